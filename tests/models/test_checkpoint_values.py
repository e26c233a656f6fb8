"""What a checkpoint may hold (mmpvt.models.checkpoints.loading, mmpvt.apis.convert): tensors of
the model's kind with finite values, in a dict; anything else is one error naming the file or the
key and saying what was expected."""
import pytest
import torch

from mmpvt.apis.convert import convert_checkpoint_file
from mmpvt.models import PVT, PVTv2, CheckpointMismatchError, CheckpointReadError

FAMILIES = [pytest.param(PVT, 'tiny', id='PVT'), pytest.param(PVTv2, 'b0', id='PVTv2')]
KEY = 'stages.0.patch_embed.proj.weight'


def saved(tmp_path, state_dict, name='model.pth'):
    torch.save({'state_dict': state_dict}, tmp_path / name)
    return str(tmp_path / name)


def init_cfg_load(cls, arch, path):
    cls(arch, init_cfg=dict(type='Pretrained', checkpoint=path)).init_weights()


@pytest.mark.parametrize('cls,arch', FAMILIES)
@pytest.mark.parametrize('bad,message', [
    (float('nan'), r'1 tensors with NaN or infinite values: stages\.0\.patch_embed\.proj\.weight '
                   r'\(1 of \d+ values\)'),
    (float('inf'), r'1 tensors with NaN or infinite values'),
])
def test_non_finite_weights_are_an_error_naming_the_key(tmp_path, cls, arch, bad, message):
    sd = cls(arch).state_dict()
    sd[KEY].view(-1)[0] = bad
    path = saved(tmp_path, sd)
    with pytest.raises(CheckpointMismatchError, match=message):
        init_cfg_load(cls, arch, path)
    with pytest.raises(CheckpointMismatchError, match=message):
        convert_checkpoint_file(path, str(tmp_path / 'out.pth'))
    with pytest.raises(CheckpointMismatchError, match=message):  # any loader: the pre-hook
        cls(arch).load_state_dict(sd)
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('cls,arch', FAMILIES)
def test_an_integer_tensor_where_a_float_belongs_is_an_error_unless_cast(tmp_path, cls, arch):
    sd = cls(arch).state_dict()
    sd[KEY] = torch.zeros_like(sd[KEY], dtype=torch.int64)
    path = saved(tmp_path, sd)
    with pytest.raises(CheckpointMismatchError, match=r'1 tensors of a non-float dtype .*--cast-'
                       r'dtypes.*: stages\.0\.patch_embed\.proj\.weight int64 vs float32'):
        init_cfg_load(cls, arch, path)
    info = convert_checkpoint_file(path, str(tmp_path / 'out.pth'), cast_dtypes=True)
    assert info['num_tensors'] == len(sd)
    out = torch.load(tmp_path / 'out.pth')['state_dict'][KEY]
    assert out.dtype == torch.float32 and not out.any()


def test_a_half_precision_release_loads_as_before(tmp_path):
    sd = {k: v.half() for k, v in PVT('tiny').state_dict().items()}
    model = PVT('tiny', init_cfg=dict(type='Pretrained', checkpoint=saved(tmp_path, sd)))
    model.init_weights()
    assert torch.equal(model.state_dict()[KEY], sd[KEY].float())


def test_a_state_dict_entry_that_is_not_a_tensor_is_named(tmp_path):
    sd = PVT('tiny').state_dict()
    sd[KEY] = 'a string'
    with pytest.raises(ValueError, match=r"the state dict entry 'stages\.0\.patch_embed\.proj\."
                                         r"weight' holds a str \('a string'\), expected a tensor"):
        convert_checkpoint_file(saved(tmp_path, sd), str(tmp_path / 'out.pth'))


@pytest.mark.parametrize('content', [[torch.zeros(2)], torch.zeros(2)], ids=['list', 'tensor'])
def test_a_file_holding_no_dict_is_an_error_naming_it(tmp_path, content):
    torch.save(content, tmp_path / 'odd.pth')
    with pytest.raises(CheckpointReadError, match=r'The checkpoint .*odd\.pth holds a '
                                                  r'(list|Tensor); expected a dict'):
        convert_checkpoint_file(str(tmp_path / 'odd.pth'), str(tmp_path / 'out.pth'))


def test_converting_a_file_onto_itself_is_refused_and_the_source_kept(tmp_path):
    path = saved(tmp_path, PVT('tiny').state_dict())
    before = (tmp_path / 'model.pth').read_bytes()
    with pytest.raises(ValueError, match=r'the output .*model\.pth is the checkpoint being '
                                         'converted'):
        convert_checkpoint_file(path, path)
    assert (tmp_path / 'model.pth').read_bytes() == before
