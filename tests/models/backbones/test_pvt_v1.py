"""Specification of what is PVT v1's own (mmpvt.families.pvt_v1): its sizes, its features
against the explicit reference (reference_pvt.py), its position tables, its class token (as the
body of the ImageNet classifier; logits: tests/models/test_image_classifier.py), and mmdet's port.

mmdet 3.3's PyramidVisionTransformer holding the same official weights, measured (random
official-layout weights, tiny/small, 224² and 256x320, fp32): mmpvt is within 1.1e-5 of the
explicit reference, mmdet's port 1.5e-4 .. 3.4e-4 from it, and the two ports differ by at most
3.4e-4. Setting mmpvt's LayerNorm eps to mmdet's 1e-6 everywhere closes the gap to <= 1.5e-5, so
the eps (1e-5 in patch embedding and K/V reduction, as trained) is the whole difference.
"""
import math

import pytest
import torch

from mmpvt.models import PVT
from ...helpers import (CLASSIFIER_ONLY, backbone_with_official_weights, max_abs_diff,
                        meta_backbone, parameter_count, set_layer_norm_eps, size_id)
from ..reference_pvt import reference_forward

HEADS = (1, 2, 5, 8)


# ---- sizes -------------------------------------------------------------------------------------
@pytest.mark.parametrize('arch,paper_millions', [('tiny', 13.2), ('small', 24.5), ('medium', 44.2),
                                                 ('large', 61.4)])
def test_with_the_classifier_the_sizes_are_those_of_table1(official_keys, arch, paper_millions):
    # Table 1's classifier sizes include the head, the class token and its position-table row.
    classifier = sum(
        math.prod(s) for k, s in official_keys[arch] if CLASSIFIER_ONLY['PVT'].match(k))
    n = parameter_count(meta_backbone(arch)) + 512 + classifier
    assert round(n / 1e6, 1) == paper_millions


# ---- random initialisation ---------------------------------------------------------------------
def test_random_init_leaves_the_convolutions_at_pytorch_defaults():
    # The authors' v1 initialises only linears, norms and position tables; a convolution keeps
    # torch.nn.Conv2d's own init: weight and bias uniform in +-1/sqrt(fan_in), fan_in = Cin k^2.
    model = PVT('small', drop_path_rate=0.0)
    model.init_weights()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 + (3 + 4 + 6)  # patch embeddings, one K/V reduction per block (R > 1)
    for conv in convs:
        bound = 1 / math.sqrt(conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1])
        for t in (conv.weight, conv.bias):
            assert t.abs().max() <= bound
            assert t.abs().max() > 0.9 * bound  # uniform: it fills the range


def test_random_init_of_linears_and_position_tables_is_trunc_normal_002():
    model = PVT('small', drop_path_rate=0.0)
    model.init_weights()
    for t in (model.stages[0].blocks[0].mlp.fc1.weight, model.stages[0].pos_embed):
        assert abs(t.std().item() - 0.02) < 0.002


# ---- numerics against the explicit reference ---------------------------------------------------
@pytest.mark.parametrize('arch,hw', [('tiny', (224, 224)), ('tiny', (256, 320)),
                                     ('small', (192, 128))], ids=size_id)
def test_official_weights_give_reference_features_fp32(arch, hw):
    """fp32, tolerance 2e-5 absolute (the reference uses the literal softmax form)."""
    model, sd = backbone_with_official_weights(arch)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        ours, ref = model(x), reference_forward(sd, HEADS, x)
    assert [o.shape for o in ours] == [r.shape for r in ref]
    assert max_abs_diff(ours, ref) < 2e-5


def test_official_weights_give_reference_features_fp64():
    """float64 exposes any eps or rule difference that float32 noise hides: tolerance 1e-10."""
    model, sd = backbone_with_official_weights('tiny', dtype=torch.float64)
    x = torch.randn(1, 3, 96, 160, dtype=torch.float64)
    with torch.no_grad():
        assert max_abs_diff(model(x), reference_forward(sd, HEADS, x)) < 1e-10


# ---- position tables ---------------------------------------------------------------------------
def test_position_table_is_not_resized_on_the_pretraining_grid():
    stage = PVT('tiny').stages[0]
    assert stage.pos_grid == (56, 56)  # 224 / 4
    assert stage.pos_embed_for((56, 56)) is stage.pos_embed


def test_resized_table_is_differentiable_in_training():
    table = PVT('tiny').stages[0].pos_embed_for((24, 32))
    assert table.shape == (1, 24 * 32, 64) and table.requires_grad


def load_in_place(model, other):
    model.load_state_dict(other.state_dict())


def load_by_assignment(model, other):  # new tensors whose version counters start at 0
    model.load_state_dict(other.state_dict(), assign=True)


def swap_data(model, other):  # no version bump either
    for mine, theirs in zip(model.parameters(), other.parameters()):
        mine.data = theirs.data.clone()


def ema_step(model, other):  # in place through .data, as mmengine's EMA updates its model
    for mine, theirs in zip(model.parameters(), other.parameters()):
        mine.data.lerp_(theirs.data, 1.0)


@pytest.mark.parametrize('replace', [load_in_place, load_by_assignment, swap_data, ema_step],
                         ids=lambda f: f.__name__)
def test_the_resized_position_table_follows_new_weights(replace):
    model, _ = backbone_with_official_weights('tiny', seed=0)
    other, _ = backbone_with_official_weights('tiny', seed=1)
    x = torch.randn(1, 3, 96, 128)  # a grid other than the pre-training one: tables resized
    with torch.no_grad():
        model(x)
        replace(model, other)
        for a, b in zip(model(x), other(x)):
            assert torch.equal(a, b)


def test_pretraining_size_below_the_total_stride_is_rejected():
    with pytest.raises(
            ValueError, match=r'^PVT: pretrain_img_size must be an int or \(H, W\) of '
            r'at least the total stride 32, got \(0, 0\)$'):
        PVT('tiny', pretrain_img_size=0)


# ---- as the authors' ImageNet classifier (out_type='cls_token') -------------------------------
@pytest.mark.parametrize('arch', ['tiny', 'small', 'medium', 'large'])
def test_class_token_backbone_is_the_official_classifier_without_its_head(official_keys, arch):
    """Every tensor of the release but the head: class token, final norm and the whole
    1 + 7 x 7 stage-4 position table."""
    with torch.device('meta'):
        model = PVT(arch, out_type='cls_token')
    body = {k: s for k, s in official_keys[arch] if not k.startswith('head.')}
    assert parameter_count(model) == sum(math.prod(s) for s in body.values())
    assert tuple(model.cls_token.shape) == body['cls_token']
    assert tuple(model.stages[3].pos_embed.shape) == body['pos_embed4']


@pytest.mark.parametrize('hw', [(224, 224), (256, 320)], ids=size_id)
def test_class_token_backbone_returns_one_feature_per_image(hw):
    model = PVT('tiny', out_type='cls_token').eval()
    assert model.out_indices == (3, )
    with torch.no_grad():
        out = model(torch.randn(2, 3, *hw))
    assert len(out) == 1 and out[0].shape == (2, 512)


@pytest.mark.parametrize('out_indices', [(2, 3), (0, 1, 2, 3), 2])
def test_class_token_output_takes_the_last_stage_only(out_indices):
    with pytest.raises(
            ValueError, match=r"^PVT: out_type='cls_token' outputs the class token of "
            r'the last stage only: out_indices must be \(3,\), got '):
        PVT('tiny', out_type='cls_token', out_indices=out_indices)


def test_unknown_out_type_is_rejected():
    with pytest.raises(
            ValueError, match=r"^PVT: out_type must be one of \('featmap', "
            r"'cls_token'\), got 'token'$"):
        PVT('tiny', out_type='token')


def test_class_token_cannot_join_a_spatial_reduction():
    arch = dict(embed_dims=[64, 128], depths=[1, 1], num_heads=[1, 2], mlp_ratios=[4, 4],
                sr_ratios=[4, 2], patch_sizes=[4, 2])
    with pytest.raises(ValueError, match=r"needs sr_ratio 1 in the last stage .* got sr_ratios "
                       r"\[4, 2\]$"):
        PVT(arch, out_type='cls_token')


def test_gradients_reach_the_class_token_its_position_and_the_final_norm():
    model = PVT('tiny', out_type='cls_token', drop_path_rate=0.0)
    model.init_weights()
    model(torch.randn(1, 3, 64, 96))[0].square().sum().backward()
    assert model.cls_token.grad.abs().sum() > 0 and model.norm.weight.grad.abs().sum() > 0
    table = model.stages[3].pos_embed.grad
    assert table[:, 0].abs().sum() > 0 and table[:, 1:].abs().sum() > 0


@pytest.mark.parametrize('frozen,frozen_extra', [(3, False), (4, True)])
def test_the_class_token_and_final_norm_freeze_with_every_stage(frozen, frozen_extra):
    model = PVT('tiny', out_type='cls_token', frozen_stages=frozen).train()
    assert model.cls_token.requires_grad is not frozen_extra
    assert model.norm.weight.requires_grad is not frozen_extra
    assert model.stages[3].pos_embed.requires_grad is (frozen < 4)


# ---- mmdet's port ------------------------------------------------------------------------------
def both_ports(arch):
    """(mmpvt, mmdet 3.3) PVTs holding the same random official weights, in eval mode."""
    from mmdet.models.backbones.pvt import PyramidVisionTransformer, pvt_convert
    ours, sd = backbone_with_official_weights(arch)
    depths = {'tiny': [2, 2, 2, 2], 'small': [3, 4, 6, 3]}[arch]
    theirs = PyramidVisionTransformer(num_layers=depths, drop_path_rate=0.0)
    theirs.load_state_dict(pvt_convert(sd), strict=True)
    return ours, theirs.eval()


@pytest.mark.parametrize('hw', [(224, 224), (256, 320)], ids=size_id)
def test_mmdet_port_agrees_within_its_layer_norm_eps_difference(hw):
    ours, theirs = both_ports('tiny')
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        assert max_abs_diff(ours(x), theirs(x)) < 5e-4  # measured <= 3.4e-4


@pytest.mark.parametrize('arch', ['tiny', 'small'])
def test_with_mmdet_eps_the_ports_agree_to_float_precision(arch):
    ours, theirs = both_ports(arch)
    set_layer_norm_eps(ours, 1e-6)
    x = torch.randn(1, 3, 256, 320)
    with torch.no_grad():
        assert max_abs_diff(ours(x), theirs(x)) < 2.5e-5  # measured <= 1.5e-5
