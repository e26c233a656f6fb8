"""Specification of telling checkpoints apart and converting them
(mmpvt.models.checkpoints.convert): each family's layouts are identified from their key names,
other libraries' own models convert to ours, wrapped training checkpoints are unwrapped, and the
variant is read off the shapes."""
import pytest
import torch

from mmpvt.models import build_backbone, convert_to_mmpvt, identify
from mmpvt.models.checkpoints import extract_state_dict, infer_arch

from ...helpers import (V1_ARCHS, V2_ARCHS, assert_holds_official_weights, by_family, family,
                        meta_backbone, official_weights)
from ..reference_layouts import LAYOUT_CASES, identified_as, in_layout


@pytest.mark.parametrize('arch,layout', LAYOUT_CASES)
def test_identify_names_family_and_layout(arch, layout):
    expected = (family(arch), identified_as(layout))
    assert identify(in_layout(layout, official_weights(arch))) == expected


@pytest.mark.parametrize('arch', by_family('tiny', 'b0'))
def test_identify_knows_mmpvts_own_layout(arch):
    assert identify(meta_backbone(arch).state_dict()) == (family(arch), 'mmpvt')


def test_identify_rejects_what_is_neither_family():
    with pytest.raises(ValueError, match=r'^Not a PVT or PVTv2 checkpoint: expected keys like '
                                         r'.*; got conv1\.weight \.\.\.$'):
        identify({'conv1.weight': torch.zeros(1)})


def mmdet_v1():
    from mmdet.models.backbones.pvt import PyramidVisionTransformer
    return PyramidVisionTransformer(num_layers=[2, 2, 2, 2])


def mmdet_v2():
    from mmdet.models.backbones.pvt import PyramidVisionTransformerV2
    return PyramidVisionTransformerV2(embed_dims=32, num_layers=[2, 2, 2, 2])


def transformers_b0(model_class):
    def build():
        import transformers
        config = transformers.PvtV2Config(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2],
                                          num_labels=1000)
        return getattr(transformers, model_class)(config)
    return build


@pytest.mark.parametrize('arch,build,layout', [
    pytest.param('tiny', mmdet_v1, 'mmdet', id='PVT-mmdet'),
    pytest.param('b0', mmdet_v2, 'mmdet', id='PVTv2-mmdet'),
    pytest.param('b0', transformers_b0('PvtV2ForImageClassification'), 'transformers',
                 id='PVTv2-transformers-classifier'),
    pytest.param('b0', transformers_b0('PvtV2Model'), 'transformers_model',
                 id='PVTv2-transformers-model'),
])
def test_state_dict_of_another_librarys_model_converts_to_ours(arch, build, layout):
    """What the library's model itself saves (not a layout written from the facts file) converts
    to a strict mmpvt state dict with the same weights."""
    official = official_weights(arch)
    theirs = build()
    theirs.load_state_dict(in_layout(layout, official), strict=True)
    converted = convert_to_mmpvt(theirs.state_dict())
    assert (converted.family, converted.layout) == (family(arch), identified_as(layout))
    ours = build_backbone(arch)
    ours.load_state_dict(converted.state_dict, strict=True)
    assert_holds_official_weights(ours, official)


@pytest.mark.parametrize('wrap', [
    lambda sd: {'state_dict': sd, 'meta': {'epoch': 12}},
    lambda sd: {'model': sd},
    lambda sd: {'module': sd},
    lambda sd: {f'module.{k}': v for k, v in sd.items()},  # DistributedDataParallel
    lambda sd: {**{f'backbone.{k}': v for k, v in sd.items()}, 'neck.conv.weight': torch.zeros(1)},
], ids=['state_dict', 'model', 'module', 'ddp-prefix', 'whole-detector'])
def test_extract_state_dict_finds_the_backbone_in_a_training_checkpoint(wrap):
    sd = official_weights('tiny')
    assert list(extract_state_dict(wrap(sd))) == list(sd)


def test_extract_state_dict_with_a_prefix_that_nothing_has_is_an_error():
    with pytest.raises(ValueError, match="No key in the checkpoint starts with prefix 'backbone.'"):
        extract_state_dict(official_weights('tiny'), prefix='backbone')


@pytest.mark.parametrize('arch', by_family(*V1_ARCHS, *V2_ARCHS))
def test_infer_arch_names_the_variant_of_a_state_dict(arch):
    assert infer_arch(meta_backbone(arch).state_dict(), family(arch))['name'] == arch
