"""Specification of the PVTv2 backbone (mmpvt.models.backbones.pvt_v2).

Expected values come from the official key tables (tests/data), the facts file
(../shared/reference/pvt_v2.md) and the explicit reference in reference_pvt_v2.py.
"""
import math

import pytest
import torch

from mmpvt.models import PVTv2
from mmpvt.models.checkpoints.pvt_v2 import official_to_mmpvt
from mmpvt.models.layers import PVTBlock

from ..helpers import max_abs_diff
from .reference_pvt import random_official_state_dict
from .reference_pvt_v2 import reference_forward_v2

HEADS = (1, 2, 5, 8)
CHANNELS = {'b0': (32, 64, 160, 256), 'b2': (64, 128, 320, 512)}
STRIDES = (4, 8, 16, 32)
VARIANTS = ('b0', 'b1', 'b2', 'b2_li', 'b3', 'b4', 'b5')


def official_v2(official_v2_keys, arch, seed=0, dtype=torch.float32, **kwargs):
    """(PVTv2 holding random official-layout weights, those weights), in eval mode."""
    sd = random_official_state_dict(official_v2_keys[arch], seed=seed)
    sd = {k: v.to(dtype) for k, v in sd.items()}
    model = PVTv2(arch, drop_path_rate=0.0, **kwargs).to(dtype)
    model.load_state_dict(official_to_mmpvt(sd)[0], strict=True)
    return model.eval(), sd


# ---- shapes and sizes --------------------------------------------------------------------------
@pytest.mark.parametrize('hw', [(224, 224), (256, 320), (33, 47), (1, 1), (97, 61)])
def test_output_shapes_are_ceil_of_input_over_stride(hw):
    model = PVTv2('b0').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    assert [tuple(o.shape) for o in outs] == [
        (1, c, math.ceil(hw[0] / s), math.ceil(hw[1] / s)) for c, s in zip(CHANNELS['b0'], STRIDES)]


@pytest.mark.parametrize('arch', VARIANTS)
def test_parameter_count_equals_official_checkpoint_minus_head(official_v2_keys, arch):
    official = sum(math.prod(shape) for name, shape in official_v2_keys[arch]
                   if not name.startswith('head.'))
    assert sum(p.numel() for p in PVTv2(arch).parameters()) == official


def test_parameter_counts_in_millions_match_the_facts_file():
    # pvt_v2.md Sec. 7 (backbone, no head); with the 1000-class head they are timm's counts.
    facts = dict(b0=3.41, b1=13.50, b2=24.85, b2_li=22.04, b3=44.73, b4=62.04, b5=81.44)
    for arch, millions in facts.items():
        assert round(sum(p.numel() for p in PVTv2(arch).parameters()) / 1e6, 2) == millions


@pytest.mark.parametrize('arch', VARIANTS)
def test_state_dict_keys_and_shapes_are_the_official_ones_renamed(official_v2_keys, arch):
    release = dict((k, s) for k, s in official_v2_keys[arch] if not k.startswith('head.'))
    renamed = {k: tuple(v.shape) for k, v in
               official_to_mmpvt({k: torch.empty(s, device='meta') for k, s in release.items()})[0].items()}
    assert {k: tuple(v.shape) for k, v in PVTv2(arch).state_dict().items()} == renamed


# ---- numerics against the explicit reference ----------------------------------------------------
@pytest.mark.parametrize('arch,hw', [('b0', (224, 224)), ('b0', (96, 160)), ('b2', (224, 224)),
                                     ('b2', (128, 96)), ('b2_li', (224, 224)),
                                     ('b2_li', (100, 150))])
def test_official_weights_give_reference_features_fp32(official_v2_keys, arch, hw):
    """fp32, tolerance 2e-5 absolute (the reference uses the literal softmax form)."""
    model, sd = official_v2(official_v2_keys, arch)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        ours, ref = model(x), reference_forward_v2(sd, HEADS, arch == 'b2_li', x)
    assert [o.shape for o in ours] == [r.shape for r in ref]
    assert max_abs_diff(ours, ref) < 2e-5


@pytest.mark.parametrize('arch,hw', [('b0', (64, 96)), ('b2', (96, 64)), ('b2_li', (70, 45))])
def test_official_weights_give_reference_features_fp64(official_v2_keys, arch, hw):
    """float64 exposes any eps or rule difference that float32 noise hides: tolerance 1e-9."""
    model, sd = official_v2(official_v2_keys, arch, dtype=torch.float64)
    x = torch.randn(1, 3, *hw, dtype=torch.float64)
    with torch.no_grad():
        assert max_abs_diff(model(x), reference_forward_v2(sd, HEADS, arch == 'b2_li', x)) < 1e-9


def test_layer_norm_eps_follow_the_official_model():
    model = PVTv2('b2_li')
    stage = model.stages[0]
    assert stage.patch_embed.norm.eps == 1e-5 and stage.blocks[0].attn.norm.eps == 1e-5
    assert stage.blocks[0].norm1.eps == 1e-6 and stage.blocks[0].norm2.eps == 1e-6
    assert stage.norm.eps == 1e-6


def test_linear_sra_reduces_to_49_tokens_in_every_stage_whatever_the_grid():
    model = PVTv2('b2_li')
    for stage in model.stages:
        attn = stage.blocks[0].attn
        c = attn.q.in_features
        for hw in [(3, 5), (13, 21), (56, 56)]:
            assert attn.reduce(torch.randn(1, hw[0] * hw[1], c), hw).shape == (1, 49, c)


def test_undivisible_grid_pads_kv_and_loses_no_border_pixel():
    model = PVTv2('b0', drop_path_rate=0.0).eval()
    x = torch.randn(1, 3, 37, 45, requires_grad=True)  # stage-1 grid 10 x 12, R = 8
    assert model.stages[0].blocks[0].attn.reduce(torch.randn(1, 120, 32), (10, 12)).shape[1] == 4
    for out in model(x):  # (not a plain channel sum: that is constant after a unit LayerNorm)
        (grad,) = torch.autograd.grad(out[0, :, -1, -1].square().sum(), x, retain_graph=True)
        assert grad[0, :, -1, -1].abs().sum() > 0


# ---- training features ------------------------------------------------------------------------
def test_gradients_reach_every_parameter():
    model = PVTv2('b2_li', drop_path_rate=0.0)
    model.init_weights()
    sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()] == []


def test_frozen_stages_have_no_gradient_and_stay_in_eval_mode():
    model = PVTv2('b0', frozen_stages=2)
    model.train()
    for i, stage in enumerate(model.stages):
        frozen = i < 2
        assert all(p.requires_grad is not frozen for p in stage.parameters())
        assert all(m.training is not frozen for m in stage.modules())
    sum(o.mean() for o in model(torch.randn(1, 3, 64, 64))).backward()
    assert all(p.grad is None for p in model.stages[1].parameters())
    assert all(p.grad is not None for p in model.stages[2].parameters())


def count_block_forwards(model):
    """Calls of each layer's forward (pre-hooks: a recomputation may stop before the end)."""
    calls = []
    for m in model.modules():
        if isinstance(m, PVTBlock):
            m.register_forward_pre_hook(lambda *args: calls.append(1))
    return calls


def test_activation_checkpointing_recomputes_each_layer_in_backward():
    model = PVTv2('b0', drop_path_rate=0.0, with_cp=True)
    calls = count_block_forwards(model)
    loss = sum(o.square().mean() for o in model(torch.randn(1, 3, 64, 64)))
    assert len(calls) == 8  # 2+2+2+2 layers
    loss.backward()
    assert len(calls) == 16  # each layer ran again to rebuild its activations


def test_without_checkpointing_no_layer_runs_twice():
    model = PVTv2('b0', drop_path_rate=0.0)
    calls = count_block_forwards(model)
    sum(o.square().mean() for o in model(torch.randn(1, 3, 64, 64))).backward()
    assert len(calls) == 8


def test_activation_checkpointing_keeps_outputs_and_gradients():
    plain = PVTv2('b0', drop_path_rate=0.0)
    plain.init_weights()
    ckpt = PVTv2('b0', drop_path_rate=0.0, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    outs_a, outs_b = plain(x), ckpt(x)
    sum(o.square().mean() for o in outs_a).backward()
    sum(o.square().mean() for o in outs_b).backward()
    assert max_abs_diff(outs_a, outs_b) < 1e-6
    for (name, pa), pb in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6, rtol=1e-5), name


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_gradients_agree_with_fp32_gradients(official_v2_keys, dtype):
    """Low-precision gradients point the same way as fp32 ones: cosine > 0.99 over all weights."""
    model, _ = official_v2(official_v2_keys, 'b0')
    model.train()
    x = torch.randn(2, 3, 64, 64)

    def gradient(autocast):
        model.zero_grad()
        with torch.autocast('cpu', dtype=dtype, enabled=autocast):
            loss = sum(o.float().square().mean() for o in model(x))
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    ref, low = gradient(False), gradient(True)
    assert torch.isfinite(low).all()
    assert torch.nn.functional.cosine_similarity(ref, low, dim=0).item() > 0.99


def test_stochastic_depth_rises_linearly_to_drop_path_rate():
    model = PVTv2('b0', drop_path_rate=0.1)
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0.0, 1 / 70, 2 / 70, 3 / 70, 4 / 70, 5 / 70, 6 / 70, 0.1])


# ---- arguments and inputs ---------------------------------------------------------------------
def test_custom_arch_dict_builds_that_network():
    arch = dict(embed_dims=[16, 32], depths=[1, 1], num_heads=[1, 2], mlp_ratios=[2, 2],
                sr_ratios=[2, 1], linear=True)
    outs = PVTv2(arch, out_indices=(0, 1)).eval()(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 8, 8), (1, 32, 4, 4)]


@pytest.mark.parametrize('arch,error,message', [
    ('b6', ValueError, "Unknown PVTv2 arch 'b6'"),
    (dict(embed_dims=[64]), ValueError, 'missing'),
    (dict(embed_dims=[32], depths=[1], num_heads=[0], mlp_ratios=[4], sr_ratios=[1]), ValueError,
     'num_heads must be positive integers'),
    (dict(embed_dims=[32], depths=[1], num_heads=[1], mlp_ratios=[4], sr_ratios=[0]), ValueError,
     'sr_ratios must be positive integers'),
    (dict(embed_dims=[32], depths=[0], num_heads=[1], mlp_ratios=[4], sr_ratios=[1]), ValueError,
     'depths must be positive integers'),
    (dict(embed_dims=[32], depths=[1], num_heads=[1], mlp_ratios=[4], sr_ratios=[1],
          linear='yes'), TypeError, 'linear must be True or False'),
    (dict(embed_dims=[30], depths=[1], num_heads=[4], mlp_ratios=[4], sr_ratios=[1]), ValueError,
     'not divisible by num_heads'),
])
def test_bad_arch_is_rejected_with_a_clear_error(arch, error, message):
    with pytest.raises(error, match=message):
        PVTv2(arch)


@pytest.mark.parametrize('kwargs,message', [
    (dict(out_indices=(4,)), 'out_indices'), (dict(out_indices=(0, 0)), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'), (dict(drop_path_rate=1.5), 'drop_path_rate'),
    (dict(drop_path_rate=-0.5), 'drop_path_rate'), (dict(in_channels=0), 'in_channels'),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PVTv2('b0', **kwargs)


def test_out_indices_come_back_in_the_order_asked_and_an_int_selects_one():
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert [o.shape[1] for o in PVTv2('b0', out_indices=(2, 1)).eval()(x)] == [160, 64]
        assert [o.shape[1] for o in PVTv2('b0', out_indices=3).eval()(x)] == [256]


@pytest.mark.parametrize('x,error,message', [
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), TypeError, 'floating-point'),
    (torch.zeros(1, 3, 32, 32, dtype=torch.float64), TypeError, 'torch.float64 differs'),
    ([torch.zeros(3, 32, 32)], TypeError, r'\(B, 3, H, W\) tensor, got list'),
    (torch.zeros(3, 32, 32), ValueError, r'\(B, 3, H, W\)'),
])
def test_bad_input_gets_an_error_saying_what_is_expected(x, error, message):
    with pytest.raises(error, match=message):
        PVTv2('b0')(x)


# ---- other implementations holding the same weights ----------------------------------------------
def test_mmdet_port_differs_only_by_its_layer_norm_eps(official_v2_keys):
    """mmdet 3.3's PyramidVisionTransformerV2 uses eps 1e-6 in patch embedding and attn.norm,
    where the official model (and mmpvt) use 1e-5. In float64 (no float32 noise to hide in) the
    two differ measurably, and agree to 1e-9 once ours uses mmdet's eps."""
    from mmdet.models.backbones.pvt import PyramidVisionTransformerV2, pvt_convert
    ours, sd = official_v2(official_v2_keys, 'b0', dtype=torch.float64)
    theirs = PyramidVisionTransformerV2(embed_dims=32, num_layers=[2, 2, 2, 2], drop_path_rate=0.0)
    theirs.load_state_dict(pvt_convert(sd), strict=True)
    theirs.double().eval()
    x = torch.randn(1, 3, 128, 160, dtype=torch.float64)
    with torch.no_grad():
        official_gap = max_abs_diff(ours(x), theirs(x))
        for m in ours.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.eps = 1e-6
        assert max_abs_diff(ours(x), theirs(x)) < 1e-9
    assert official_gap > 1e-7


def test_transformers_port_agrees_once_given_the_official_eps(official_v2_keys):
    """transformers' PvtV2Model uses config.layer_norm_eps (1e-6) everywhere; with the official
    1e-5 in patch embedding and attention norms it computes mmpvt's features."""
    import transformers

    from .test_checkpoints_v2 import transformers_layout
    ours, sd = official_v2(official_v2_keys, 'b0')
    config = transformers.PvtV2Config(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2])
    theirs = transformers.PvtV2Model(config).eval()
    theirs.load_state_dict(transformers_layout(
        {k: v for k, v in sd.items() if not k.startswith('head.')}, prefix=''), strict=True)
    for name, m in theirs.named_modules():
        if name.endswith('patch_embedding.layer_norm') or name.endswith('attention.layer_norm'):
            m.eps = 1e-5
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        hidden = theirs(x, output_hidden_states=True).hidden_states
        assert max_abs_diff(ours(x), hidden[-4:]) < 2e-5
