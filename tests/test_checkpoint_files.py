"""What a file given as a checkpoint is taken as, by every loader of mmengine (paths given to
``load_from``, ``tools/test.py``, ``init_cfg=dict(type='Pretrained')``, the conversion tool): a
file torch.save did not write is one sentence naming it and what to give instead, and a
checkpoint holding EMA weights beside the trained ones loads the weights its trainer's own loader
takes, with a line saying which."""
import gzip
import io
import logging
import shutil
import tarfile

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from mmpvt.models import PVTv2
from mmpvt.models.checkpoints import CheckpointReadError
from mmpvt.safe_load import CheckpointFileError
from .helpers import load_pretrained, run_main


@pytest.fixture
def checkpoint(tmp_path):
    """A real checkpoint file (a small state dict written by torch.save)."""
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.arange(6.0)}}, path)
    return path


def archive(kind, source, target):
    if kind == 'gzip':
        with open(source, 'rb') as f, gzip.open(target, 'wb') as out:
            shutil.copyfileobj(f, out)
    else:
        with tarfile.open(target, 'w') as tar:
            tar.add(source, arcname='model.pth')
    return target


@pytest.mark.parametrize('kind', ['gzip', 'tar'])
def test_an_archive_is_told_to_be_unpacked(checkpoint, tmp_path, kind):
    path = archive(kind, checkpoint, tmp_path / 'model.pth.archive')
    with pytest.raises(CheckpointFileError) as error:
        CheckpointLoader.load_checkpoint(str(path))
    assert str(error.value) == (f'{path} is a {kind} archive, not a checkpoint: unpack it and '
                                'give the checkpoint file (.pth) inside')


def test_an_empty_file_is_named_as_empty(tmp_path):
    (tmp_path / 'empty.pth').touch()
    with pytest.raises(CheckpointFileError) as error:
        CheckpointLoader.load_checkpoint(str(tmp_path / 'empty.pth'))
    assert str(error.value) == (f'{tmp_path / "empty.pth"} is empty (0 bytes; an interrupted '
                                'download or copy?); expected a checkpoint written by torch.save')


@pytest.mark.parametrize('inside,said', [
    ('pytorch_model.bin', 'is a directory; expected a checkpoint file: give the weights inside '
     'it, {path}/pytorch_model.bin'),
    ('model.safetensors', 'is a directory; expected a checkpoint file: give the weights inside '
     'it, {path}/model.safetensors'),
    (None, 'is a directory; expected a checkpoint file (written by torch.save, or .safetensors)'),
], ids=['pytorch_model.bin', 'model.safetensors', 'empty'])
def test_a_directory_is_told_which_file_inside_to_give(checkpoint, tmp_path, inside, said):
    folder = tmp_path / 'hf_model'
    folder.mkdir()
    (folder / 'config.json').write_text('{}')
    if inside:
        shutil.copy(checkpoint, folder / inside)
    with pytest.raises(CheckpointFileError) as error:
        CheckpointLoader.load_checkpoint(str(folder))
    assert str(error.value) == f'{folder} ' + said.format(path=folder)


def test_a_truncated_checkpoint_is_named_with_what_was_expected(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointFileError) as error:
        CheckpointLoader.load_checkpoint(str(tmp_path / 'cut.pth'))
    message = str(error.value)
    assert message.startswith(f'Could not read the checkpoint {tmp_path / "cut.pth"}: ')
    assert message.endswith('Expected a PyTorch checkpoint written by torch.save (is the file '
                            'complete?)') and '\n' not in message


def test_a_pretrained_backbone_from_an_archive_is_a_read_error(checkpoint, tmp_path):
    path = archive('gzip', checkpoint, tmp_path / 'b0.pth.gz')
    with pytest.raises(CheckpointReadError, match=r'b0\.pth\.gz is a gzip archive'):
        load_pretrained(path, 'b0')


@pytest.mark.slow  # tools/test.py builds the runner
@pytest.mark.parametrize('given', ['empty', 'tar', 'directory'])
def test_test_py_says_what_the_checkpoint_is_in_one_line(checkpoint, tiny_shapes, tmp_path, given):
    path = {
        'empty': tmp_path / 'empty.pth',
        'directory': tmp_path,
        'tar': archive('tar', checkpoint, tmp_path / 'model.tar')
    }[given]
    if given == 'empty':
        path.touch()
    result = run_main(
        'test.py',
        ['configs/demo/cls_pvt_v2_b0.py',
         str(path), '--work-dir',
         str(tmp_path / 'work')], env={'MMPVT_DEMO_DATA': f'{tiny_shapes}/'}, check=False)
    (line, ) = result.stderr.splitlines()
    assert result.returncode == 1 and line.startswith(f'test: {path} is ')


# ---- EMA weights -------------------------------------------------------------------------------
def trained_and_ema():
    """(trained weights, EMA weights) of a PVTv2-B0 in mmpvt's layout, every tensor different."""
    trained = PVTv2('b0').state_dict()
    return trained, {k: v + 1 for k, v in trained.items()}


@pytest.fixture
def mmpvt_log():
    """What mmpvt logs through mmengine's current logger during the test."""
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield logged
    logger.removeHandler(handler)


def test_timm_ema_weights_are_taken_as_timms_loader_takes_them(tmp_path, mmpvt_log):
    trained, ema = trained_and_ema()
    torch.save({
        'epoch': 3,
        'arch': 'pvt_v2_b0',
        'state_dict': trained,
        'state_dict_ema': ema
    }, tmp_path / 'timm_train.pth')
    model = PVTv2('b0')
    load_checkpoint(model, str(tmp_path / 'timm_train.pth'), map_location='cpu', strict=True)
    assert all(torch.equal(model.state_dict()[k], ema[k]) for k in ema)
    assert (f'{tmp_path / "timm_train.pth"}: took the EMA weights (state_dict_ema), as timm\'s '
            'loader does; the non-EMA state_dict is not loaded') in mmpvt_log.getvalue()


def test_authors_ema_weights_are_left_as_their_evaluation_leaves_them(tmp_path, mmpvt_log):
    trained, ema = trained_and_ema()
    torch.save({'epoch': 3, 'model': trained, 'model_ema': ema}, tmp_path / 'deit_style.pth')
    model = load_pretrained(tmp_path / 'deit_style.pth', 'b0')
    assert all(torch.equal(model.state_dict()[k], trained[k]) for k in trained)
    assert (f'{tmp_path / "deit_style.pth"}: took the weights under model, which the authors\' '
            'code evaluates; its model_ema weights are not loaded') in mmpvt_log.getvalue()
