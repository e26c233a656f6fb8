"""Specification of PVTv2 checkpoint loading: every layout, the family and variant mix-ups.

Layouts are built here from the official key table (tests/data) with renamings written from the
facts file (../shared/reference/pvt_v2.md Sec. 3), not with mmpvt's converters; mmdet's layout is
made by mmdet's own ``pvt_convert``.
"""
import re
import subprocess
import sys

import pytest
import torch

from mmpvt.models import PVT, PVTv2, CheckpointMismatchError, identify
from mmpvt.models.checkpoints.pvt_v2 import mmpvt_to_official

from .reference_pvt import random_official_state_dict
from .test_checkpoints import REPO


@pytest.fixture(scope='module')
def b0_official(official_v2_keys):
    return random_official_state_dict(official_v2_keys['b0'])


def timm_layout(official):
    """Official -> timm, after timm's checkpoint_filter_fn (facts 3.2); head kept."""
    out = {}
    for k, v in official.items():
        k = re.sub(r'^patch_embed1\.', 'patch_embed.', k)
        k = re.sub(r'^patch_embed(\d)\.', lambda m: f'stages.{int(m.group(1)) - 1}.downsample.', k)
        k = re.sub(r'^block(\d)\.', lambda m: f'stages.{int(m.group(1)) - 1}.blocks.', k)
        k = re.sub(r'^norm(\d)\.', lambda m: f'stages.{int(m.group(1)) - 1}.norm.', k)
        out[k.replace('dwconv.dwconv', 'dwconv')] = v
    return out


HF_RENAMES = [('attn.q.', 'attention.query.'), ('attn.proj.', 'attention.proj.'),
              ('attn.sr.', 'attention.spatial_reduction.'), ('attn.norm.', 'attention.layer_norm.'),
              ('norm1.', 'layer_norm_1.'), ('norm2.', 'layer_norm_2.'),
              ('mlp.fc1.', 'mlp.dense1.'), ('mlp.fc2.', 'mlp.dense2.')]


def transformers_layout(official, prefix='pvt_v2.'):
    """Official -> PvtV2ForImageClassification, after transformers' converter (facts 3.3)."""
    out = {}
    for k, v in official.items():
        if k.startswith('head.'):
            out['classifier.' + k[5:]] = v
            continue
        m = re.match(r'^(patch_embed|norm|block)(\d)\.(.*)$', k)
        layer = f'{prefix}encoder.layers.{int(m.group(2)) - 1}.'
        rest = m.group(3)
        if m.group(1) == 'patch_embed':
            out[layer + 'patch_embedding.' + rest.replace('norm.', 'layer_norm.')] = v
        elif m.group(1) == 'norm':
            out[layer + 'layer_norm.' + rest] = v
        else:
            j, rest = rest.split('.', 1)
            block = f'{layer}blocks.{j}.'
            if rest.startswith('attn.kv.'):
                half = v.shape[0] // 2
                out[block + 'attention.key.' + rest[8:]] = v[:half]
                out[block + 'attention.value.' + rest[8:]] = v[half:]
                continue
            for old, new in HF_RENAMES:
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            out[block + rest] = v
    return out


def mmdet_layout(official):
    from mmdet.models.backbones.pvt import pvt_convert
    return pvt_convert(official)


def load(path, arch='b0', cls=PVTv2, **extra):
    model = cls(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path), **extra))
    model.init_weights()
    return model.eval()


def features(model, hw=(64, 96)):
    with torch.no_grad():
        return model(torch.randn(1, 3, *hw, generator=torch.Generator().manual_seed(0)))


@pytest.fixture(scope='module')
def official_features(b0_official, tmp_path_factory):
    path = tmp_path_factory.mktemp('official') / 'pvt_v2_b0.pth'
    torch.save(b0_official, path)
    return features(load(path))


@pytest.mark.parametrize('layout,build,wrap', [
    ('official', lambda sd: sd, lambda sd: sd),
    ('mmdet', mmdet_layout, lambda sd: {'state_dict': sd}),
    ('timm', timm_layout, lambda sd: sd),
    ('transformers', transformers_layout, lambda sd: sd),
    ('transformers', lambda sd: transformers_layout(
        {k: v for k, v in sd.items() if not k.startswith('head.')}, prefix=''), lambda sd: sd),
    ('mmpvt', lambda sd: PVTv2('b0').state_dict(), lambda sd: sd),
])
def test_each_layout_is_identified_and_loads(tmp_path, b0_official, official_features, layout,
                                             build, wrap):
    sd = build(b0_official)
    assert identify(sd) == ('PVTv2', layout)
    torch.save(wrap(sd), tmp_path / 'ckpt.pth')
    model = load(tmp_path / 'ckpt.pth')
    if layout != 'mmpvt':  # same weights as the official file: bit-identical features
        for a, b in zip(features(model), official_features):
            assert torch.equal(a, b)


def test_mmdet_layout_matches_mmdets_own_model(b0_official):
    from mmdet.models.backbones.pvt import PyramidVisionTransformerV2
    theirs = PyramidVisionTransformerV2(embed_dims=32, num_layers=[2, 2, 2, 2])
    theirs.load_state_dict(mmdet_layout(b0_official), strict=True)
    assert identify(theirs.state_dict()) == ('PVTv2', 'mmdet')


def test_transformers_layout_matches_transformers_own_model(b0_official):
    import transformers
    config = transformers.PvtV2Config(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2],
                                      num_labels=1000)
    theirs = transformers.PvtV2ForImageClassification(config)
    sd = transformers_layout(b0_official)
    assert {k: tuple(v.shape) for k, v in theirs.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in sd.items()}


def test_head_is_dropped_with_one_log_line(tmp_path, b0_official, log_lines):
    torch.save(b0_official, tmp_path / 'pvt_v2_b0.pth')
    load(tmp_path / 'pvt_v2_b0.pth')
    lines = [line for line in log_lines if 'dropped classification-only' in line]
    assert len(lines) == 1 and 'head.weight' in lines[0] and 'head.bias' in lines[0]


def test_whole_detector_checkpoint_loads_the_backbone_part(tmp_path, b0_official,
                                                           official_features):
    detector = {f'backbone.{k}': v for k, v in mmdet_layout(b0_official).items()}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(8, 32, 1, 1)
    torch.save({'meta': {'epoch': 12}, 'state_dict': detector}, tmp_path / 'retinanet.pth')
    for a, b in zip(features(load(tmp_path / 'retinanet.pth')), official_features):
        assert torch.equal(a, b)


def test_v1_checkpoint_given_to_pvtv2_says_what_it_is(tmp_path, official_keys):
    torch.save(random_official_state_dict(official_keys['tiny']), tmp_path / 'pvt_tiny.pth')
    with pytest.raises(CheckpointMismatchError,
                       match=r"is a PVT checkpoint \(official layout\).*cannot be loaded into "
                             r"PVTv2.*type='mmpvt.PVT'"):
        load(tmp_path / 'pvt_tiny.pth')


def test_v2_checkpoint_given_to_pvt_says_what_it_is(tmp_path, b0_official):
    torch.save({'state_dict': mmdet_layout(b0_official)}, tmp_path / 'mmdet_b0.pth')
    with pytest.raises(CheckpointMismatchError,
                       match=r"is a PVTv2 checkpoint \(mmdet layout\).*type='mmpvt.PVTv2'"):
        load(tmp_path / 'mmdet_b0.pth', arch='tiny', cls=PVT)


@pytest.mark.parametrize('ckpt_arch,model_arch', [('b1', 'b0'), ('b2', 'b2_li'), ('b2_li', 'b2'),
                                                  ('b3', 'b2')])
def test_wrong_variant_names_the_variant_it_looks_like(tmp_path, official_v2_keys, ckpt_arch,
                                                       model_arch):
    torch.save(random_official_state_dict(official_v2_keys[ckpt_arch]), tmp_path / 'ckpt.pth')
    with pytest.raises(CheckpointMismatchError) as err:
        load(tmp_path / 'ckpt.pth', arch=model_arch)
    message = str(err.value)
    assert f'does not fit this PVTv2 (arch {model_arch})' in message
    assert f'looks like PVTv2 arch {ckpt_arch}.' in message


@pytest.mark.parametrize('arch', ['b0', 'b2_li', 'b5'])
def test_export_to_official_layout_gives_the_release_keys_and_shapes(official_v2_keys, arch):
    exported = mmpvt_to_official(PVTv2(arch).state_dict())
    release = {k: s for k, s in official_v2_keys[arch] if not k.startswith('head.')}
    assert {k: tuple(v.shape) for k, v in exported.items()} == release


@pytest.mark.slow  # runs the tool in a subprocess
def test_convert_tool_handles_a_transformers_checkpoint(tmp_path, b0_official):
    torch.save(transformers_layout(b0_official), tmp_path / 'hf_b0.pth')
    out = tmp_path / 'b0_mmpvt.pth'
    result = subprocess.run([sys.executable, 'tools/convert_checkpoint.py', str(tmp_path / 'hf_b0.pth'),
                             str(out)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'PVTv2' in result.stdout and 'transformers layout' in result.stdout and 'b0' in result.stdout
    saved = torch.load(out, weights_only=True)
    assert identify(saved['state_dict']) == ('PVTv2', 'mmpvt') and saved['meta']['arch'] == 'b0'


@pytest.mark.slow  # runs the tool in a subprocess
def test_convert_tool_refuses_an_arch_of_the_other_family(tmp_path, b0_official):
    torch.save(b0_official, tmp_path / 'b0.pth')
    result = subprocess.run([sys.executable, 'tools/convert_checkpoint.py', str(tmp_path / 'b0.pth'),
                             str(tmp_path / 'out.pth'), '--arch', 'tiny'], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode != 0 and 'not a PVTv2 arch' in result.stderr
    assert 'Traceback' not in result.stderr and not (tmp_path / 'out.pth').exists()
