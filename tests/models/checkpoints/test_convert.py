"""Specification of telling checkpoints apart and converting them
(mmpvt.families.layouts): each family's layouts are identified from their key names,
other libraries' own models convert to ours, wrapped training checkpoints are unwrapped, and the
variant is read off the shapes."""
import pytest
import torch

from mmpvt.families import (convert_classifier, convert_to_mmpvt, extract_state_dict, identify,
                            infer_arch)
from mmpvt.models import PVT, build_backbone
from ...helpers import (V1_ARCHS, V2_ARCHS, assert_holds_official_classifier,
                        assert_holds_official_weights, by_family, family, meta_backbone,
                        official_weights)
from ..reference_layouts import LAYOUT_CASES, identified_as, in_layout


@pytest.mark.parametrize('arch,layout', LAYOUT_CASES)
def test_identify_names_family_and_layout(arch, layout):
    expected = (family(arch), identified_as(layout))
    assert identify(in_layout(layout, official_weights(arch))) == expected


@pytest.mark.parametrize('arch', by_family('tiny', 'b0'))
def test_identify_knows_mmpvts_own_layout(arch):
    assert identify(meta_backbone(arch).state_dict()) == (family(arch), 'mmpvt')


def test_identify_rejects_what_is_neither_family():
    with pytest.raises(
            ValueError, match=r'^Not a PVT or PVTv2 checkpoint: expected keys like '
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


def transformers_tiny(model_class):

    def build():
        import transformers
        return getattr(transformers, model_class)(
            transformers.PvtConfig(depths=[2, 2, 2, 2], num_labels=1000))

    return build


@pytest.mark.parametrize('arch,build,layout', [
    pytest.param('tiny', mmdet_v1, 'mmdet', id='PVT-mmdet'),
    pytest.param('tiny', transformers_tiny('PvtForImageClassification'), 'transformers',
                 id='PVT-transformers-classifier'),
    pytest.param('tiny', transformers_tiny('PvtModel'), 'transformers_model',
                 id='PVT-transformers-model'),
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


@pytest.mark.parametrize(
    'wrap',
    [
        lambda sd: {
            'state_dict': sd,
            'meta': {
                'epoch': 12
            }
        },
        lambda sd: {
            'model': sd
        },
        lambda sd: {
            'module': sd
        },
        lambda sd: {
            f'module.{k}': v
            for k, v in sd.items()
        },  # DistributedDataParallel
        lambda sd: {
            **{
                f'backbone.{k}': v
                for k, v in sd.items()
            }, 'neck.conv.weight': torch.zeros(1)
        },
    ],
    ids=['state_dict', 'model', 'module', 'ddp-prefix', 'whole-detector'])
def test_extract_state_dict_finds_the_backbone_in_a_training_checkpoint(wrap):
    sd = official_weights('tiny')
    assert list(extract_state_dict(wrap(sd))) == list(sd)


def test_extract_state_dict_with_a_prefix_that_nothing_has_is_an_error():
    with pytest.raises(ValueError, match="No key in the checkpoint starts with prefix 'backbone.'"):
        extract_state_dict(official_weights('tiny'), prefix='backbone')


@pytest.mark.parametrize('arch', by_family(*V1_ARCHS, *V2_ARCHS))
def test_infer_arch_names_the_variant_of_a_state_dict(arch):
    assert infer_arch(meta_backbone(arch).state_dict(), family(arch))['name'] == arch


# ---- whole ImageNet classifiers ----------------------------------------------------------------
# The layouts an ImageNet classifier (head included) comes in, per family.
CLASSIFIER_CASES = [
    pytest.param(arch, layout, id=f'{family(arch)}-{layout}')
    for arch, layouts in (('tiny', ('official', 'transformers')),
                          ('b0', ('official', 'timm', 'transformers'))) for layout in layouts
]


def classifier_body(arch):
    """The backbone an ImageNet classifier of `arch` holds (v1: with the class token), on the
    meta device."""
    with torch.device('meta'):
        return PVT(arch, out_type='cls_token') if family(arch) == 'PVT' else build_backbone(arch)


@pytest.mark.parametrize('arch,layout', CLASSIFIER_CASES)
def test_a_classifier_converts_whole_to_image_classifier_names(arch, layout):
    """Backbone under ``backbone.`` (v1 with its class token, final norm and the full 1 + 7 x 7
    stage-4 table), the official ``head`` as mmpretrain's LinearClsHead ``head.fc``."""
    official = official_weights(arch)
    converted = convert_classifier(in_layout(layout, official))
    assert converted.dropped == []
    expected = {
        f'backbone.{k}': tuple(v.shape)
        for k, v in classifier_body(arch).state_dict().items()
    }
    expected.update({
        'head.fc.weight': tuple(official['head.weight'].shape),
        'head.fc.bias': tuple(official['head.bias'].shape)
    })
    sd = converted.state_dict
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert_holds_official_classifier(sd, official)


def test_a_v1_classifier_as_a_backbone_drops_what_only_classification_uses():
    """transformers' names for them: the class token under the last patch embedding, the final
    norm as encoder.layer_norm, the head as classifier (and row 0 of the last table)."""
    converted = convert_to_mmpvt(in_layout('transformers', official_weights('tiny')))
    assert converted.dropped == [
        'pvt.encoder.patch_embeddings.3.position_embeddings[:, 0] (class-token position)',
        'pvt.encoder.patch_embeddings.3.cls_token', 'pvt.encoder.layer_norm.weight',
        'pvt.encoder.layer_norm.bias', 'classifier.weight', 'classifier.bias'
    ]
    assert converted.state_dict['stages.3.pos_embed'].shape == (1, 49, 512)
