"""Specification of strict checkpoint loading (mmpvt.models.checkpoints.loading): through
``init_cfg=dict(type='Pretrained', ...)`` and through any loader (the backbones' load-state-dict
hook). Nothing is ignored silently: classification-only entries are dropped with one log line,
everything else must fit, or an error names the keys, the variant or the family it looks like.

Each behaviour runs on the smallest variant of both families (ids 'PVT-tiny', 'PVTv2-b0'); layouts
are written from the facts files (reference_layouts.py), not with mmpvt's converters.
"""
import re

import pytest
import torch
from mmengine.runner.checkpoint import load_state_dict

from mmpvt.apis.convert import convert_checkpoint_file
from mmpvt.families import convert_to_mmpvt
from mmpvt.models import PVT, CheckpointMismatchError, CheckpointReadError, build_backbone
from ...helpers import (assert_holds_official_weights, by_family, family, load_pretrained,
                        official_weights, saved_checkpoint)
from ..reference_layouts import CONVERTED_LAYOUT_CASES, in_layout, mmdet_layout

# What the official ImageNet files hold that a backbone does not, in the order of the files.
DROPPED = {
    'tiny': 'pos_embed4[:, 0] (class-token position), cls_token, norm.weight, norm.bias, '
    'head.weight, head.bias',
    'b0': 'head.weight, head.bias'
}


@pytest.fixture(params=by_family('tiny', 'b0'))
def arch(request):
    return request.param


@pytest.fixture(scope='module')
def official_files(tmp_path_factory):
    """{arch: path of a random checkpoint in the official layout}, written once."""
    root = tmp_path_factory.mktemp('official')
    for arch in DROPPED:
        torch.save(official_weights(arch), root / f'{arch}.pth')
    return {arch: root / f'{arch}.pth' for arch in DROPPED}


def assert_same_tensors(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---- through init_cfg --------------------------------------------------------------------------
def test_official_file_loads_and_logs_what_it_dropped(official_files, arch, log_lines):
    assert_holds_official_weights(
        load_pretrained(official_files[arch], arch), official_weights(arch))
    dropped = [line for line in log_lines if 'dropped classification-only' in line]
    assert len(dropped) == 1
    assert dropped[0].endswith(f'; dropped classification-only entries: {DROPPED[arch]}')


@pytest.mark.parametrize('arch,layout', CONVERTED_LAYOUT_CASES)
def test_every_layout_loads_the_weights_of_the_official_file(official_files, tmp_path, arch,
                                                             layout):
    sd = in_layout(layout, official_weights(arch))
    torch.save({'state_dict': sd} if layout == 'mmdet' else sd, tmp_path / 'ckpt.pth')
    assert_same_tensors(
        load_pretrained(tmp_path / 'ckpt.pth', arch), load_pretrained(official_files[arch], arch))


def test_own_checkpoint_round_trips(tmp_path, arch):
    src = build_backbone(arch)
    src.init_weights()
    torch.save(src.state_dict(), tmp_path / 'own.pth')
    assert_same_tensors(load_pretrained(tmp_path / 'own.pth', arch), src)


@pytest.mark.parametrize('prefix', [None, 'backbone.'])
@pytest.mark.parametrize('trained_with', ['mmdet', 'mmpvt'])
def test_whole_detector_checkpoint_loads_the_backbone_part(tmp_path, arch, trained_with, prefix):
    official = official_weights(arch)
    backbone = (
        mmdet_layout(official)
        if trained_with == 'mmdet' else convert_to_mmpvt(official).state_dict)
    detector = {f'backbone.{k}': v for k, v in backbone.items()}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(8, 32, 1, 1)
    torch.save({'meta': {'epoch': 12}, 'state_dict': detector}, tmp_path / 'retinanet.pth')
    model = load_pretrained(tmp_path / 'retinanet.pth', arch,
                            **({
                                'prefix': prefix
                            } if prefix else {}))
    assert_holds_official_weights(model, official)


def test_init_cfg_as_a_list_goes_through_the_strict_loader(official_files, arch):
    model = build_backbone(arch,
                           init_cfg=[dict(type='Pretrained', checkpoint=str(official_files[arch]))])
    model.init_weights()
    assert_holds_official_weights(model, official_weights(arch))


def test_position_tables_of_another_pretraining_size_are_resized(official_files, log_lines):
    model = PVT('tiny', pretrain_img_size=256,
                init_cfg=dict(type='Pretrained', checkpoint=str(official_files['tiny'])))
    model.init_weights()
    assert model.stages[0].pos_embed.shape == (1, 64 * 64, 64)
    assert 'PVT: resized stages.0.pos_embed from a 56x56 grid to (64, 64)' in log_lines


# ---- a classifier's backbone (PVT v1 with its class token) -------------------------------------
def test_a_class_token_backbone_keeps_what_the_official_classifier_feeds_it(
        official_files, log_lines):
    """Class token, final norm and the whole 1 + 7 x 7 stage-4 table are the backbone's; only the
    head is dropped (it belongs to the classifier's head)."""
    model = PVT('tiny', out_type='cls_token', init_cfg=dict(type='Pretrained',
                                                            checkpoint=str(official_files['tiny'])))
    model.init_weights()
    official = official_weights('tiny')
    assert torch.equal(model.cls_token, official['cls_token'])
    assert torch.equal(model.norm.weight, official['norm.weight'])
    assert torch.equal(model.stages[3].pos_embed, official['pos_embed4'])
    dropped = [line for line in log_lines if 'dropped classification-only' in line]
    assert len(dropped) == 1 and dropped[0].endswith('entries: head.weight, head.bias')


def test_class_token_row_stays_as_it_is_when_the_table_is_resized(official_files):
    model = PVT('tiny', out_type='cls_token', pretrain_img_size=256,
                init_cfg=dict(type='Pretrained', checkpoint=str(official_files['tiny'])))
    model.init_weights()
    table, official = model.stages[3].pos_embed, official_weights('tiny')['pos_embed4']
    assert table.shape == (1, 1 + 8 * 8, 512)
    assert torch.equal(table[:, 0], official[:, 0])


def test_a_backbone_checkpoint_lacks_what_a_class_token_backbone_needs(tmp_path):
    torch.save(PVT('tiny').state_dict(), tmp_path / 'dense.pth')
    with pytest.raises(
            CheckpointMismatchError, match=r'(?s)stages\.3\.pos_embed 1x49x512 vs '
            r'1x50x512.*missing from the checkpoint: '
            r'cls_token, norm\.weight, norm\.bias'):
        PVT('tiny', out_type='cls_token',
            init_cfg=dict(type='Pretrained',
                          checkpoint=str(tmp_path / 'dense.pth'))).init_weights()


# ---- what does not fit -------------------------------------------------------------------------
@pytest.mark.parametrize('ckpt_arch,model_arch,detail', [
    pytest.param('small', 'tiny', 'unexpected keys in the checkpoint: stages.0.blocks.2.',
                 id='PVT-small-into-tiny'),
    pytest.param('b1', 'b0', 'stages.0.patch_embed.proj.weight 64x3x7x7 vs 32x3x7x7',
                 id='PVTv2-b1-into-b0'),
    pytest.param('b2', 'b2_li', 'stages.0.blocks.0.attn.sr.weight 64x64x8x8 vs 64x64x1x1',
                 id='PVTv2-b2-into-b2_li'),
    pytest.param('b2_li', 'b2', 'stages.0.blocks.0.attn.sr.weight 64x64x1x1 vs 64x64x8x8',
                 id='PVTv2-b2_li-into-b2', marks=pytest.mark.slow),
    pytest.param('b3', 'b2', 'unexpected keys in the checkpoint: stages.2.blocks.6.',
                 id='PVTv2-b3-into-b2', marks=pytest.mark.slow),
])
def test_checkpoint_of_another_variant_names_the_keys_and_the_variant_it_looks_like(
        tmp_path, ckpt_arch, model_arch, detail):
    torch.save(official_weights(ckpt_arch), tmp_path / 'ckpt.pth')
    with pytest.raises(CheckpointMismatchError) as err:
        load_pretrained(tmp_path / 'ckpt.pth', model_arch)
    message = str(err.value)
    assert f'does not fit this {family(model_arch)} (arch {model_arch})' in message
    assert detail in message
    assert message.endswith(f'looks like {family(model_arch)} arch {ckpt_arch}.')


def test_shape_mismatch_of_an_own_checkpoint_is_listed_with_both_shapes(tmp_path):
    arch = dict(embed_dims=[32, 64, 160, 256], depths=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
                mlp_ratios=[8, 8, 4, 4], sr_ratios=[8, 4, 2, 1], patch_sizes=[4, 2, 2, 2])
    torch.save(PVT(arch).state_dict(), tmp_path / 'narrow.pth')
    with pytest.raises(CheckpointMismatchError, match=r'stages\.0\.patch_embed\.proj\.weight '
                       r'32x3x4x4 vs 64x3x4x4'):
        load_pretrained(tmp_path / 'narrow.pth', 'tiny')


def test_an_entry_that_is_not_a_tensor_is_named_with_the_file(tmp_path):
    # a file already in mmpvt's names (nothing to convert) goes through the same checks
    state_dict = PVT('tiny').state_dict()
    state_dict['stages.0.patch_embed.proj.weight'] = 'a string'
    torch.save(state_dict, tmp_path / 'odd.pth')
    with pytest.raises(CheckpointMismatchError) as err:
        load_pretrained(tmp_path / 'odd.pth', 'tiny')
    assert str(err.value).startswith(f'{tmp_path / "odd.pth"}: The checkpoint does not fit this '
                                     'PVT (arch tiny):\n  1 entries that are not tensors')
    assert "stages.0.patch_embed.proj.weight holds a str ('a string')" in str(err.value)


def test_unknown_extra_key_is_an_error_not_ignored(tmp_path, arch):
    torch.save(dict(official_weights(arch), extra_thing=torch.zeros(3)), tmp_path / 'extra.pth')
    with pytest.raises(CheckpointMismatchError, match='unexpected keys in the checkpoint: '
                       'extra_thing'):
        load_pretrained(tmp_path / 'extra.pth', arch)


@pytest.mark.parametrize('ckpt_arch,wrap,model_arch,message', [
    pytest.param(
        'tiny', lambda sd: sd, 'b0',
        r"is a PVT checkpoint \(official layout\); it cannot be loaded into PVTv2\. "
        r"Use type='mmpvt\.PVT' for it", id='PVT-into-PVTv2'),
    pytest.param(
        'b0', lambda sd: {'state_dict': mmdet_layout(sd)}, 'tiny',
        r"is a PVTv2 checkpoint \(mmdet layout\); it cannot be loaded into PVT\. "
        r"Use type='mmpvt\.PVTv2' for it", id='PVTv2-into-PVT'),
])
def test_checkpoint_of_the_other_family_says_what_it_is(tmp_path, ckpt_arch, wrap, model_arch,
                                                        message):
    torch.save(wrap(official_weights(ckpt_arch)), tmp_path / 'ckpt.pth')
    with pytest.raises(CheckpointMismatchError, match=message):
        load_pretrained(tmp_path / 'ckpt.pth', model_arch)


# ---- files that cannot be read -----------------------------------------------------------------
@pytest.mark.parametrize('content', [b'PK\x03\x04 truncated zip', b'this is a text file\n'],
                         ids=['broken-zip', 'text'])
def test_unreadable_file_is_an_error_naming_it(tmp_path, content):
    path = tmp_path / 'broken.pth'
    path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match='Could not read the checkpoint') as err:
        load_pretrained(path, 'tiny')
    assert str(path) in str(err.value) and 'torch.save' in str(err.value)


def test_truncated_real_checkpoint_names_the_file(official_files, tmp_path):
    data = official_files['tiny'].read_bytes()
    (tmp_path / 'cut.pth').write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointReadError, match=r'cut\.pth.*is the file complete'):
        load_pretrained(tmp_path / 'cut.pth', 'tiny')


def test_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(CheckpointReadError, match='not found: .*nowhere.pth'):
        load_pretrained(tmp_path / 'nowhere.pth', 'tiny')


def test_unreachable_url_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    url = 'http://127.0.0.1:9/pvt_tiny.pth'  # the discard port: nothing listens there
    with pytest.raises(
            CheckpointReadError, match='Could not download the checkpoint '
            r'http://127\.0\.0\.1:9/pvt_tiny\.pth.*offline'):
        load_pretrained(url, 'tiny')


# ---- any loader: the backbone's load-state-dict hook -------------------------------------------
class Detector(torch.nn.Module):
    """What mmdet/mmseg models look like to a loader: the backbone under ``backbone.``."""

    def __init__(self, arch):
        super().__init__()
        self.backbone = build_backbone(arch)
        self.neck = torch.nn.Linear(2, 2)

    def whole(self, backbone_sd):
        """A whole-model state dict with `backbone_sd` under ``backbone.``."""
        return {
            **{
                f'backbone.{k}': v
                for k, v in backbone_sd.items()
            },
            **{
                f'neck.{k}': v
                for k, v in self.neck.state_dict().items()
            }
        }


class Classifier(torch.nn.Module):
    """What mmpretrain's ImageClassifier looks like to a loader: the backbone under
    ``backbone.``, a linear head ``head.fc``, and the backbone's ``_checkpoint_filter`` as the
    classifier's own load-state-dict pre-hook (as ImageClassifier registers it)."""

    def __init__(self, arch):
        super().__init__()
        v1 = family(arch) == 'PVT'
        self.backbone = (
            PVT(arch, out_type='cls_token') if v1 else build_backbone(arch, out_indices=(3, )))
        self.head = torch.nn.Module()
        self.head.fc = torch.nn.Linear(512 if v1 else 256, 1000)
        self._register_load_state_dict_pre_hook(self.backbone._checkpoint_filter)


@pytest.mark.parametrize('load', [
    lambda model, sd: model.load_state_dict(sd, strict=True),
    lambda model, sd: load_state_dict(model, sd, strict=False),
], ids=['torch-strict', 'mmengine'])
def test_a_whole_official_classifier_loads_into_the_classifier(arch, load):
    model = Classifier(arch)
    official = official_weights(arch)
    load(model, dict(official))
    assert_holds_official_weights(model.backbone, official)
    assert torch.equal(model.head.fc.weight, official['head.weight'])
    if family(arch) == 'PVT':
        assert torch.equal(model.backbone.cls_token, official['cls_token'])


@pytest.mark.parametrize('ckpt_arch,model_arch,message', [
    pytest.param(
        'tiny', 'b0', r"^The state dict at the top level is a PVT checkpoint \(official "
        r"layout\); it cannot be loaded into PVTv2\. Use type='mmpvt\.PVT'", id='PVT-into-PVTv2'),
    pytest.param(
        'b0', 'tiny', r"^The state dict at the top level is a PVTv2 checkpoint "
        r"\(official layout\); it cannot be loaded into PVT\.", id='PVTv2-into-PVT'),
    pytest.param(
        'small', 'tiny', r"(?s)^The state dict under 'backbone\.': The checkpoint does "
        r"not fit this PVT \(arch tiny\).*looks like PVT arch small\.$", id='PVT-small-into-tiny'),
])
def test_a_classifier_of_another_family_or_variant_is_an_error_saying_what_it_is(
        ckpt_arch, model_arch, message):
    with pytest.raises(CheckpointMismatchError, match=message):
        Classifier(model_arch).load_state_dict(official_weights(ckpt_arch))


def test_official_layout_under_backbone_prefix_loads_with_torch_strict(arch):
    model = Detector(arch)
    model.load_state_dict(model.whole(official_weights(arch)), strict=True)
    assert_holds_official_weights(model.backbone, official_weights(arch))


def test_mmdet_layout_under_backbone_prefix_loads_with_mmengine(arch):
    model = Detector(arch)
    load_state_dict(model, model.whole(mmdet_layout(official_weights(arch))), strict=False)
    assert_holds_official_weights(model.backbone, official_weights(arch))


def test_mmengine_non_strict_load_of_a_wrong_shape_is_an_error(arch):
    model = Detector(arch)
    sd = model.whole(model.backbone.state_dict())
    sd['backbone.stages.1.blocks.0.attn.q.weight'] = torch.zeros(3, 3)
    width = {'tiny': 128, 'b0': 64}[arch]  # stage-2 width
    with pytest.raises(
            CheckpointMismatchError,
            match=r"(?s)under 'backbone\.'.*stages\.1\.blocks\.0\.attn\.q\.weight "
            rf"3x3 vs {width}x{width}"):
        load_state_dict(model, sd, strict=False)


def test_mmengine_non_strict_load_without_backbone_keys_is_an_error(arch):
    model = Detector(arch)
    with pytest.raises(
            CheckpointMismatchError, match=f"no weights for its {family(arch)} "
            r"backbone \(no key under 'backbone\.'\)"):
        load_state_dict(model, {f'neck.{k}': v for k, v in model.neck.state_dict().items()})


# ---- what the tensors may be: finite floats, in a dict ---------------------------------------
KEY = 'stages.0.patch_embed.proj.weight'


@pytest.mark.parametrize(
    'bad,message',
    [
        (float('nan'),
         r'1 tensors with NaN or infinite values: stages\.0\.patch_embed\.proj\.weight '
         r'\(1 of \d+ values\)$'),  # and no guess at another variant after it
        (float('inf'), r'1 tensors with NaN or infinite values'),
    ])
def test_non_finite_weights_are_an_error_naming_the_key(tmp_path, arch, bad, message):
    sd = build_backbone(arch).state_dict()
    sd[KEY].view(-1)[0] = bad
    path = saved_checkpoint(tmp_path, sd)
    with pytest.raises(CheckpointMismatchError, match=message):
        load_pretrained(path, arch)
    with pytest.raises(CheckpointMismatchError, match=message):
        convert_checkpoint_file(path, str(tmp_path / 'out.pth'))
    with pytest.raises(CheckpointMismatchError, match=message):  # any loader: the pre-hook
        build_backbone(arch).load_state_dict(sd)
    assert not (tmp_path / 'out.pth').exists()


def test_non_finite_weights_of_another_layout_are_named_as_the_file_names_them(tmp_path, arch):
    official = official_weights(arch)
    key = 'block2.1.mlp.fc1.weight'  # the authors' name (mmpvt's: stages.1.blocks.1.mlp.fc1)
    official[key] = official[key].clone()  # (the helper's tensors are shared)
    official[key].view(-1)[:3] = float('nan')
    path = saved_checkpoint(tmp_path, official)
    message = (rf'1 tensors with NaN or infinite values: {re.escape(key)} '
               rf'\(3 of {official[key].numel()} values\)$')
    with pytest.raises(CheckpointMismatchError, match=message):
        load_pretrained(path, arch)
    with pytest.raises(CheckpointMismatchError, match=message):  # any loader: the pre-hook
        build_backbone(arch).load_state_dict(official)


def test_an_integer_tensor_where_a_float_belongs_is_an_error_unless_cast(tmp_path, arch):
    sd = build_backbone(arch).state_dict()
    sd[KEY] = torch.zeros_like(sd[KEY], dtype=torch.int64)
    path = saved_checkpoint(tmp_path, sd)
    with pytest.raises(
            CheckpointMismatchError, match=r'1 tensors of a non-float dtype .*--cast-'
            r'dtypes.*: stages\.0\.patch_embed\.proj\.weight int64 vs float32'):
        load_pretrained(path, arch)
    info = convert_checkpoint_file(path, str(tmp_path / 'out.pth'), cast_dtypes=True)
    assert info['num_tensors'] == len(sd)
    out = torch.load(tmp_path / 'out.pth')['state_dict'][KEY]
    assert out.dtype == torch.float32 and not out.any()


def test_a_half_precision_release_loads_as_before(tmp_path):
    sd = {k: v.half() for k, v in PVT('tiny').state_dict().items()}
    model = load_pretrained(saved_checkpoint(tmp_path, sd), 'tiny')
    assert torch.equal(model.state_dict()[KEY], sd[KEY].float())


@pytest.mark.parametrize('content', [[torch.zeros(2)], torch.zeros(2)], ids=['list', 'tensor'])
def test_a_file_holding_no_dict_is_an_error_naming_it(tmp_path, content):
    torch.save(content, tmp_path / 'odd.pth')
    with pytest.raises(
            CheckpointReadError, match=r'The checkpoint .*odd\.pth holds a '
            r'(list|Tensor); expected a dict'):
        convert_checkpoint_file(str(tmp_path / 'odd.pth'), str(tmp_path / 'out.pth'))
