"""Specification of what is PVTv2's own (mmpvt.families.pvt_v2): its sizes, its features
against the explicit reference (reference_pvt_v2.py), linear SRA, its arch options, and the
mmdet and transformers ports.

Expected values come from the official key tables (tests/data), the facts file
(tests/data/pvt_v2_facts.md) and the explicit reference.
"""
import pytest
import torch

from mmpvt.models import PVTv2
from ...helpers import (backbone_with_official_weights, max_abs_diff, meta_backbone,
                        parameter_count, set_layer_norm_eps, size_id)
from ..reference_layouts import transformers_model_layout
from ..reference_pvt_v2 import reference_forward_v2

HEADS = (1, 2, 5, 8)


# ---- sizes -------------------------------------------------------------------------------------
# tests/data/pvt_v2_facts.md Sec. 7 (backbone, no head); with the 1000-class head they are timm's
# counts.
@pytest.mark.parametrize('arch,millions', [('b0', 3.41), ('b1', 13.50), ('b2', 24.85),
                                           ('b2_li', 22.04), ('b3', 44.73), ('b4', 62.04),
                                           ('b5', 81.44)])
def test_parameter_counts_in_millions_match_the_facts_file(arch, millions):
    assert round(parameter_count(meta_backbone(arch)) / 1e6, 2) == millions


# ---- numerics against the explicit reference ---------------------------------------------------
@pytest.mark.parametrize(
    'arch,hw',
    [('b0', (96, 160)),
     ('b2_li',
      (100, 150)), *(pytest.param(arch, hw, marks=pytest.mark.slow)
                     for arch, hw in [('b0',
                                       (224, 224)), ('b2',
                                                     (224, 224)), ('b2',
                                                                   (128, 96)), ('b2_li',
                                                                                (224, 224))])],
    ids=size_id)
def test_official_weights_give_reference_features_fp32(arch, hw):
    """fp32, tolerance 2e-5 absolute (the reference uses the literal softmax form)."""
    model, sd = backbone_with_official_weights(arch)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        ours, ref = model(x), reference_forward_v2(sd, HEADS, arch == 'b2_li', x)
    assert [o.shape for o in ours] == [r.shape for r in ref]
    assert max_abs_diff(ours, ref) < 2e-5


@pytest.mark.parametrize('arch,hw', [('b0', (64, 96)), ('b2_li', (70, 45)),
                                     pytest.param('b2', (96, 64), marks=pytest.mark.slow)],
                         ids=size_id)
def test_official_weights_give_reference_features_fp64(arch, hw):
    """float64 exposes any eps or rule difference that float32 noise hides: tolerance 1e-9."""
    model, sd = backbone_with_official_weights(arch, dtype=torch.float64)
    x = torch.randn(1, 3, *hw, dtype=torch.float64)
    with torch.no_grad():
        assert max_abs_diff(model(x), reference_forward_v2(sd, HEADS, arch == 'b2_li', x)) < 1e-9


# ---- linear SRA and the arch options -----------------------------------------------------------
def test_linear_sra_reduces_to_49_tokens_in_every_stage_whatever_the_grid():
    model = PVTv2('b2_li')
    for stage in model.stages:
        attn = stage.blocks[0].attn
        c = attn.q.in_features
        for hw in [(3, 5), (13, 21), (56, 56)]:
            assert attn.reduce(torch.randn(1, hw[0] * hw[1], c), hw).shape == (1, 49, c)


@pytest.mark.parametrize('extra,error,message', [
    (dict(linear='yes'), TypeError, "PVTv2 arch: linear must be True or False, got 'yes'"),
    (dict(embed_dims=[8] * 5, depths=[1] * 5, num_heads=[1] * 5, mlp_ratios=[1] * 5,
          sr_ratios=[1] * 5), ValueError, 'PVTv2 arch: at most 4 stages, got 5'),
], ids=['linear-not-bool', 'five-stages'])
def test_bad_v2_arch_options_are_rejected(extra, error, message):
    arch = dict(embed_dims=[32], depths=[1], num_heads=[1], mlp_ratios=[4], sr_ratios=[1])
    with pytest.raises(error, match=message):
        PVTv2(dict(arch, **extra))


# ---- other implementations holding the same weights --------------------------------------------
def test_mmdet_port_differs_only_by_its_layer_norm_eps():
    """mmdet 3.3's PyramidVisionTransformerV2 uses eps 1e-6 in patch embedding and attn.norm,
    where the official model (and mmpvt) use 1e-5. In float64 (no float32 noise to hide in) the
    two differ measurably, and agree to 1e-9 once ours uses mmdet's eps."""
    from mmdet.models.backbones.pvt import PyramidVisionTransformerV2, pvt_convert
    ours, sd = backbone_with_official_weights('b0', dtype=torch.float64)
    theirs = PyramidVisionTransformerV2(embed_dims=32, num_layers=[2, 2, 2, 2], drop_path_rate=0.0)
    theirs.load_state_dict(pvt_convert(sd), strict=True)
    theirs.double().eval()
    x = torch.randn(1, 3, 128, 160, dtype=torch.float64)
    with torch.no_grad():
        official_gap = max_abs_diff(ours(x), theirs(x))
        set_layer_norm_eps(ours, 1e-6)
        assert max_abs_diff(ours(x), theirs(x)) < 1e-9
    assert official_gap > 1e-7


def test_transformers_port_agrees_once_given_the_official_eps():
    """transformers' PvtV2Model uses config.layer_norm_eps (1e-6) everywhere; with the official
    1e-5 in patch embedding and attention norms it computes mmpvt's features (fp32, 2e-5)."""
    import transformers
    ours, sd = backbone_with_official_weights('b0')
    config = transformers.PvtV2Config(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2])
    theirs = transformers.PvtV2Model(config).eval()
    theirs.load_state_dict(transformers_model_layout(sd), strict=True)
    for name, m in theirs.named_modules():
        if name.endswith('patch_embedding.layer_norm') or name.endswith('attention.layer_norm'):
            m.eps = 1e-5
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        hidden = theirs(x, output_hidden_states=True).hidden_states
        assert max_abs_diff(ours(x), hidden[-4:]) < 2e-5
