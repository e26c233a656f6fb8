"""Specification of checkpoint loading and conversion, PVT v1 (mmpvt.models.checkpoints)."""
import os
import subprocess
import sys

import pytest
import torch

from mmpvt.models import PVT, CheckpointMismatchError, convert_to_mmpvt, identify
from mmpvt.apis.convert import convert_checkpoint_file

from ..helpers import REPO
from .reference_pvt import random_official_state_dict


@pytest.fixture
def tiny_official(official_keys):
    return random_official_state_dict(official_keys['tiny'])


def pretrained(path, arch='tiny', **extra):
    model = PVT(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path), **extra))
    model.init_weights()
    return model


def assert_same_weights(model, official):
    sd = model.state_dict()
    assert torch.equal(sd['stages.0.patch_embed.proj.weight'], official['patch_embed1.proj.weight'])
    assert torch.equal(sd['stages.2.blocks.1.attn.kv.bias'], official['block3.1.attn.kv.bias'])
    assert torch.equal(sd['stages.3.pos_embed'], official['pos_embed4'][:, 1:])


def test_detect_layout_of_each_known_layout(tiny_official):
    from mmdet.models.backbones.pvt import pvt_convert
    assert identify(tiny_official) == ('PVT', 'official')
    assert identify(pvt_convert(tiny_official)) == ('PVT', 'mmdet')
    assert identify(PVT('tiny').state_dict()) == ('PVT', 'mmpvt')
    with pytest.raises(ValueError, match='Not a PVT or PVTv2 checkpoint'):
        identify({'conv1.weight': torch.zeros(1)})


def test_official_checkpoint_loads_through_init_cfg(tmp_path, tiny_official, log_lines):
    torch.save(tiny_official, tmp_path / 'pvt_tiny.pth')
    model = pretrained(tmp_path / 'pvt_tiny.pth')
    assert_same_weights(model, tiny_official)
    dropped = [line for line in log_lines if 'dropped classification-only' in line]
    assert len(dropped) == 1
    for key in ('cls_token', 'norm.weight', 'head.weight', 'pos_embed4[:, 0]'):
        assert key in dropped[0]


def test_mmdet_layout_loads_and_gives_identical_features(tmp_path, tiny_official):
    from mmdet.models.backbones.pvt import pvt_convert
    torch.save(tiny_official, tmp_path / 'official.pth')
    torch.save({'state_dict': pvt_convert(tiny_official)}, tmp_path / 'mmdet.pth')
    a = pretrained(tmp_path / 'official.pth').eval()
    b = pretrained(tmp_path / 'mmdet.pth').eval()
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        for fa, fb in zip(a(x), b(x)):
            assert torch.equal(fa, fb)


def test_whole_detector_checkpoint_loads_backbone_part(tmp_path, tiny_official):
    mmpvt_sd = PVT('tiny').state_dict()
    mmpvt_sd.update(convert_to_mmpvt(tiny_official)[0])
    detector = {f'backbone.{k}': v for k, v in mmpvt_sd.items()}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(8, 64, 1, 1)
    torch.save({'meta': {'epoch': 12}, 'state_dict': detector}, tmp_path / 'retinanet.pth')
    assert_same_weights(pretrained(tmp_path / 'retinanet.pth'), tiny_official)
    # an explicit prefix works too
    assert_same_weights(pretrained(tmp_path / 'retinanet.pth', prefix='backbone.'), tiny_official)


def test_own_checkpoint_round_trips(tmp_path):
    src = PVT('tiny')
    src.init_weights()
    torch.save(src.state_dict(), tmp_path / 'own.pth')
    loaded = pretrained(tmp_path / 'own.pth')
    for k, v in src.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_checkpoint_of_another_arch_names_the_mismatched_keys(tmp_path, official_keys):
    torch.save(random_official_state_dict(official_keys['small']), tmp_path / 'small.pth')
    with pytest.raises(CheckpointMismatchError) as err:
        pretrained(tmp_path / 'small.pth', arch='tiny')
    message = str(err.value)
    assert 'unexpected keys' in message and 'stages.0.blocks.2.' in message
    assert "looks like PVT arch small" in message


def test_shape_mismatch_is_listed_with_both_shapes(tmp_path):
    arch = dict(embed_dims=[32, 64, 160, 256], depths=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
                mlp_ratios=[8, 8, 4, 4], sr_ratios=[8, 4, 2, 1], patch_sizes=[4, 2, 2, 2])
    torch.save(PVT(arch).state_dict(), tmp_path / 'narrow.pth')
    with pytest.raises(CheckpointMismatchError, match=r'stages\.0\.patch_embed\.proj\.weight '
                                                      r'32x3x4x4 vs 64x3x4x4'):
        pretrained(tmp_path / 'narrow.pth')


def test_unknown_extra_key_is_an_error_not_ignored(tmp_path, tiny_official):
    torch.save(dict(tiny_official, extra_thing=torch.zeros(3)), tmp_path / 'extra.pth')
    with pytest.raises(CheckpointMismatchError, match='extra_thing'):
        pretrained(tmp_path / 'extra.pth')


def test_position_tables_of_other_pretraining_size_are_resized(tmp_path, tiny_official, log_lines):
    torch.save(tiny_official, tmp_path / 'pvt_tiny.pth')
    model = PVT('tiny', pretrain_img_size=256,
                init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'pvt_tiny.pth')))
    model.init_weights()
    assert model.stages[0].pos_embed.shape == (1, 64 * 64, 64)
    assert any('resized stages.0.pos_embed from a 56x56 grid' in line for line in log_lines)


@pytest.mark.slow  # runs the tool in a subprocess
def test_convert_tool_writes_loadable_mmpvt_checkpoint(tmp_path, tiny_official):
    torch.save(tiny_official, tmp_path / 'pvt_tiny.pth')
    out = tmp_path / 'converted' / 'pvt_tiny_mmpvt.pth'
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, 'tools', 'convert_checkpoint.py'),
         str(tmp_path / 'pvt_tiny.pth'), str(out)], capture_output=True, text=True, check=True)
    assert 'official' in result.stdout and 'tiny' in result.stdout
    saved = torch.load(out, weights_only=True)
    assert identify(saved['state_dict']) == ('PVT', 'mmpvt')
    assert_same_weights(pretrained(out), tiny_official)
    assert os.listdir(out.parent) == ['pvt_tiny_mmpvt.pth']  # no temporary left behind


def test_failed_conversion_leaves_destination_untouched(tmp_path, official_keys):
    torch.save(random_official_state_dict(official_keys['small']), tmp_path / 'small.pth')
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'previous content')
    with pytest.raises(CheckpointMismatchError):
        convert_checkpoint_file(str(tmp_path / 'small.pth'), str(dst), arch='tiny')
    assert dst.read_bytes() == b'previous content'
    assert set(os.listdir(tmp_path)) == {'small.pth', 'out.pth'}  # no temporary left behind


@pytest.mark.parametrize('arch', ['tiny', 'large'])
def test_export_to_official_layout_matches_release_keys_and_shapes(official_keys, arch):
    from mmpvt.models.checkpoints.pvt_v1 import mmpvt_to_official
    exported = mmpvt_to_official(PVT(arch).state_dict())
    release = {k: s for k, s in official_keys[arch]
               if k not in ('cls_token', 'norm.weight', 'norm.bias', 'head.weight', 'head.bias')}
    assert {k: tuple(v.shape) for k, v in exported.items()} == release


# ---- unreadable files and init_cfg forms (hardening) -------------------------------------------
def test_init_cfg_as_a_list_goes_through_the_strict_loader(tmp_path, tiny_official):
    torch.save(tiny_official, tmp_path / 'pvt_tiny.pth')
    model = PVT('tiny', init_cfg=[dict(type='Pretrained', checkpoint=str(tmp_path / 'pvt_tiny.pth'))])
    model.init_weights()
    assert_same_weights(model, tiny_official)


@pytest.mark.parametrize('content,message', [
    (b'PK\x03\x04 truncated zip', 'Could not read the checkpoint'),
    (b'this is a text file\n', 'Could not read the checkpoint'),
])
def test_unreadable_file_is_an_error_naming_it(tmp_path, content, message):
    from mmpvt.models import CheckpointReadError
    path = tmp_path / 'broken.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match=message) as err:
        pretrained(path)
    assert str(path) in str(err.value) and 'torch.save' in str(err.value)


def test_truncated_real_checkpoint_names_the_file(tmp_path, tiny_official):
    from mmpvt.models import CheckpointReadError
    torch.save(tiny_official, tmp_path / 'full.pth')
    data = (tmp_path / 'full.pth').read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointReadError, match=r'cut\.pth.*is the file complete'):
        pretrained(tmp_path / 'cut.pth')


def test_missing_file_is_an_error_naming_it(tmp_path):
    from mmpvt.models import CheckpointReadError
    with pytest.raises(CheckpointReadError, match='not found: .*nowhere.pth'):
        pretrained(tmp_path / 'nowhere.pth')


def test_unreachable_url_says_what_to_do(monkeypatch, tmp_path):
    from mmpvt.models import CheckpointReadError
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    url = 'http://127.0.0.1:9/pvt_tiny.pth'  # the discard port: nothing listens there
    with pytest.raises(CheckpointReadError, match='Could not download the checkpoint '
                                                  r'http://127\.0\.0\.1:9/pvt_tiny\.pth.*offline'):
        pretrained(url)


@pytest.mark.slow  # runs the tool in a subprocess
def test_convert_tool_prints_one_line_for_an_unreadable_file(tmp_path):
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    result = subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'convert_checkpoint.py'),
                             str(tmp_path / 'text.pth'), str(tmp_path / 'out.pth')],
                            capture_output=True, text=True)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.startswith('convert_checkpoint: Could not read the checkpoint')
    assert not (tmp_path / 'out.pth').exists()


# ---- any loader: the backbone's load-state-dict hook -----------------------------------------
class Detector(torch.nn.Module):
    """What mmdet/mmseg models look like to a loader: the backbone under ``backbone.``."""

    def __init__(self):
        super().__init__()
        self.backbone = PVT('tiny')
        self.neck = torch.nn.Linear(2, 2)


def whole_model(backbone_sd, neck):
    return {**{f'backbone.{k}': v for k, v in backbone_sd.items()},
            **{f'neck.{k}': v for k, v in neck.state_dict().items()}}


def test_official_layout_under_backbone_prefix_loads_with_torch_strict(tiny_official):
    model = Detector()
    model.load_state_dict(whole_model(tiny_official, model.neck), strict=True)
    assert_same_weights(model.backbone, tiny_official)


def test_mmdet_layout_under_backbone_prefix_loads_with_mmengine(tiny_official):
    from mmdet.models.backbones.pvt import pvt_convert
    from mmengine.runner.checkpoint import load_state_dict
    model = Detector()
    load_state_dict(model, whole_model(pvt_convert(tiny_official), model.neck), strict=False)
    assert_same_weights(model.backbone, tiny_official)


def test_mmengine_non_strict_load_of_a_wrong_shape_is_an_error(tiny_official):
    from mmengine.runner.checkpoint import load_state_dict
    model = Detector()
    sd = whole_model(PVT('tiny').state_dict(), model.neck)
    sd['backbone.stages.1.blocks.0.attn.q.weight'] = torch.zeros(3, 3)
    with pytest.raises(CheckpointMismatchError,
                       match=r"(?s)under 'backbone\.'.*stages\.1\.blocks\.0\.attn\.q\.weight 3x3 vs 128x128"):
        load_state_dict(model, sd, strict=False)


def test_mmengine_non_strict_load_without_backbone_keys_is_an_error():
    from mmengine.runner.checkpoint import load_state_dict
    model = Detector()
    with pytest.raises(CheckpointMismatchError, match="no key under 'backbone.'"):
        load_state_dict(model, {f'neck.{k}': v for k, v in model.neck.state_dict().items()})
