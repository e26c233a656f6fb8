"""Specification of the PVT v1 backbone (mmpvt.models.backbones.pvt_v1)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmpvt.models import PVT, SpatialReductionAttention
from mmpvt.models.checkpoints.pvt_v1 import official_to_mmpvt
from mmpvt.models.layers import resize_pos_embed

from .reference_pvt import explicit_attention, random_official_state_dict, reference_forward

CHANNELS = (64, 128, 320, 512)
STRIDES = (4, 8, 16, 32)
HEADS = (1, 2, 5, 8)
CLASSIFIER_ONLY = ('cls_token', 'norm.weight', 'norm.bias', 'head.weight', 'head.bias')


def official_pvt(official_keys, arch='tiny', seed=0, **kwargs):
    """(PVT with random official-layout weights loaded, those official weights)."""
    sd = random_official_state_dict(official_keys[arch], seed=seed)
    model = PVT(arch=arch, drop_path_rate=0.0, **kwargs)
    model.load_state_dict(official_to_mmpvt(sd)[0], strict=True)
    return model.eval(), sd


# ---- shapes ------------------------------------------------------------------------------------
@pytest.mark.parametrize('hw', [(224, 224), (256, 320), (33, 47), (1, 1), (800, 1333)])
def test_output_shapes_are_ceil_of_input_over_stride(hw):
    model = PVT('tiny').eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *hw))
    assert [tuple(o.shape) for o in outs] == [
        (1, c, math.ceil(hw[0] / s), math.ceil(hw[1] / s)) for c, s in zip(CHANNELS, STRIDES)]


@pytest.mark.parametrize('out_indices', [(0,), (3,), (1, 2), (0, 1, 2, 3)])
def test_out_indices_select_stages(out_indices):
    model = PVT('tiny', out_indices=out_indices).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 96))
    assert [o.shape[1] for o in outs] == [CHANNELS[i] for i in out_indices]
    assert [o.shape[-1] for o in outs] == [96 // STRIDES[i] for i in out_indices]


@pytest.mark.parametrize('arch', ['tiny', 'small', 'medium', 'large'])
def test_parameter_count_equals_official_backbone(official_keys, arch):
    # The official classifier minus its classification-only tensors and the class token's row of
    # the stage-4 position table (50 -> 49 positions, 512 values).
    official = sum(math.prod(shape) for name, shape in official_keys[arch]
                   if name not in CLASSIFIER_ONLY)
    expected = official - 512
    assert sum(p.numel() for p in PVT(arch).parameters()) == expected


def test_paper_table1_parameter_counts_in_millions(official_keys):
    # Table 1's classifier sizes (13.2M, 24.5M, 44.2M, 61.4M) include head and class token.
    for arch, paper in zip(['tiny', 'small', 'medium', 'large'], [13.2, 24.5, 44.2, 61.4]):
        n = sum(p.numel() for p in PVT(arch).parameters()) + 512 + sum(
            math.prod(s) for k, s in official_keys[arch] if k in CLASSIFIER_ONLY)
        assert round(n / 1e6, 1) == paper


# ---- numerics against the explicit reference -------------------------------------------------
@pytest.mark.parametrize('arch,hw', [('tiny', (224, 224)), ('tiny', (256, 320)),
                                     ('small', (192, 128))])
def test_official_weights_give_reference_features(official_keys, arch, hw):
    """fp32, tolerance 2e-5 absolute (the reference uses the literal softmax form)."""
    model, sd = official_pvt(official_keys, arch)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward(sd, HEADS, x)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < 2e-5


def test_official_weights_match_reference_to_float64_precision(official_keys):
    model, sd = official_pvt(official_keys, 'tiny')
    model = model.double()
    x = torch.randn(1, 3, 96, 160, dtype=torch.float64)
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward({k: v.double() for k, v in sd.items()}, HEADS, x)
    assert max((a - b).abs().max().item() for a, b in zip(ours, ref)) < 1e-10


@pytest.mark.parametrize('hw,sr', [((16, 16), 8), ((13, 21), 8), ((5, 3), 8), ((7, 9), 2),
                                   ((6, 6), 1)])
def test_sdpa_attention_equals_explicit_softmax_form(hw, sr):
    attn = SpatialReductionAttention(64, num_heads=2, sr_ratio=sr).eval()
    x = torch.randn(2, hw[0] * hw[1], 64)
    B, N, C = x.shape
    with torch.no_grad():
        q = attn.q(x).reshape(B, N, 2, 32).transpose(1, 2)
        k, v = attn.kv(attn.reduce(x, hw)).reshape(B, -1, 2, 2, 32).permute(2, 0, 3, 1, 4)
        expected = attn.proj(explicit_attention(q, k, v).transpose(1, 2).reshape(B, N, C))
        assert (attn(x, hw) - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize('hw,sr,expected_kv', [
    ((16, 24), 8, 2 * 3),    # divisible: exactly the official reduction
    ((13, 21), 8, 2 * 3),    # not divisible: zero-padded to 16 x 24, nothing dropped
    ((5, 3), 8, 1),          # smaller than R: one K/V token (the official code crashes)
    ((7, 7), 1, 49),         # R = 1: no reduction
])
def test_kv_reduction_pads_grid_to_multiple_of_r(hw, sr, expected_kv):
    attn = SpatialReductionAttention(64, num_heads=1, sr_ratio=sr)
    assert attn.reduce(torch.randn(1, hw[0] * hw[1], 64), hw).shape == (1, expected_kv, 64)


def test_kv_reduction_of_divisible_grid_is_official_conv(official_keys):
    attn = SpatialReductionAttention(64, num_heads=1, sr_ratio=8)
    x = torch.randn(1, 16 * 24, 64)
    with torch.no_grad():
        conv = F.conv2d(x.transpose(1, 2).reshape(1, 64, 16, 24), attn.sr.weight, attn.sr.bias,
                        stride=8)
        expected = F.layer_norm(conv.flatten(2).transpose(1, 2), (64,), attn.norm.weight,
                                attn.norm.bias, 1e-5)
        # channels-last vs NCHW kernels sum the 64 products in another order: float32 rounding
        assert torch.allclose(attn.reduce(x, (16, 24)), expected, atol=1e-5, rtol=0)


def test_border_pixels_of_undivisible_input_reach_every_stage():
    model = PVT('tiny', drop_path_rate=0.0).eval()
    x = torch.randn(1, 3, 37, 45, requires_grad=True)
    outs = model(x)
    for out in outs:  # the bottom-right input pixel influences each stage's last position
        (grad,) = torch.autograd.grad(out[0, :, -1, -1].sum(), x, retain_graph=True)
        assert grad[0, :, -1, -1].abs().sum() > 0


def test_layer_norm_eps_follow_official_training():
    model = PVT('tiny')
    stage = model.stages[0]
    assert stage.patch_embed.norm.eps == 1e-5
    assert stage.blocks[0].attn.norm.eps == 1e-5
    assert stage.blocks[0].norm1.eps == 1e-6 and stage.blocks[0].norm2.eps == 1e-6


# ---- position embedding ----------------------------------------------------------------------
def test_position_table_is_not_resized_on_the_pretraining_grid():
    stage = PVT('tiny').stages[0]
    assert stage.pos_embed_for((56, 56)) is stage.pos_embed


def test_position_table_resize_is_bilinear_without_align_corners():
    # Hand case: a 1 x 2 table [a, b] (one channel) resized to 1 x 4. Without align_corners the
    # output samples source x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped), i.e.
    # a, 0.75a + 0.25b, 0.25a + 0.75b, b.
    a, b = 2.0, 6.0
    pos = torch.tensor([[[a], [b]]])
    out = resize_pos_embed(pos, (1, 2), (1, 4))
    assert out.flatten().tolist() == pytest.approx([a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b])


def test_cached_position_table_follows_new_weights(official_keys):
    model, _ = official_pvt(official_keys, 'tiny', seed=0)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        model(x)  # fills the inference cache for this size
        other, _ = official_pvt(official_keys, 'tiny', seed=1)
        model.load_state_dict(other.state_dict())
        for a, b in zip(model(x), other(x)):
            assert torch.equal(a, b)


# ---- training features -------------------------------------------------------------------------
def test_gradients_reach_every_parameter():
    model = PVT('tiny', drop_path_rate=0.0)
    model.init_weights()
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert no_grad == []


def test_frozen_stages_have_no_gradient_and_stay_in_eval_mode():
    model = PVT('tiny', frozen_stages=2, drop_path_rate=0.1)
    model.train()
    for i, stage in enumerate(model.stages):
        frozen = i < 2
        assert all(p.requires_grad is not frozen for p in stage.parameters())
        assert all(m.training is not frozen for m in stage.modules())
    sum(o.mean() for o in model(torch.randn(1, 3, 64, 64))).backward()
    assert all(p.grad is None for p in model.stages[0].parameters())
    assert all(p.grad is not None for p in model.stages[2].parameters())


def test_activation_checkpointing_keeps_outputs_and_gradients():
    plain = PVT('tiny', drop_path_rate=0.0)
    plain.init_weights()
    ckpt = PVT('tiny', drop_path_rate=0.0, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    outs_a, outs_b = plain(x), ckpt(x)
    sum(o.square().mean() for o in outs_a).backward()
    sum(o.square().mean() for o in outs_b).backward()
    for a, b in zip(outs_a, outs_b):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    for (name, pa), pb in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6, rtol=1e-5), name


def test_bf16_autocast_forward_is_finite_and_close_to_fp32():
    model = PVT('tiny').eval()
    model.init_weights()
    x = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = model(x)
    for a, b in zip(low, ref):
        assert torch.isfinite(a).all()
        # bf16 keeps 8 mantissa bits: relative error of the features ~1e-2
        assert ((a.float() - b).norm() / b.norm()).item() < 5e-2


def test_stochastic_depth_rises_linearly_to_drop_path_rate():
    model = PVT('small', drop_path_rate=0.3)  # 3+4+6+3 = 16 layers: steps of 0.3 / 15 = 0.02
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0.02 * i for i in range(16)])


# ---- configuration and input errors ----------------------------------------------------------
def test_custom_arch_dict_builds_that_network():
    arch = dict(embed_dims=[32, 64], depths=[1, 2], num_heads=[1, 2], mlp_ratios=[2, 2],
                sr_ratios=[2, 1], patch_sizes=[4, 2])
    outs = PVT(arch, out_indices=(0, 1)).eval()(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 8, 8), (1, 64, 4, 4)]


@pytest.mark.parametrize('arch,message', [
    ('huge', "Unknown PVT arch 'huge'"),
    (dict(embed_dims=[64]), 'missing'),
    (dict(embed_dims=[64, 128], depths=[1], num_heads=[1, 2], mlp_ratios=[4, 4],
          sr_ratios=[2, 1], patch_sizes=[4, 2]), 'one value per stage'),
    (dict(embed_dims=[60], depths=[1], num_heads=[8], mlp_ratios=[4], sr_ratios=[1],
          patch_sizes=[4]), 'not divisible by num_heads'),
])
def test_bad_arch_is_rejected_with_a_clear_error(arch, message):
    with pytest.raises(ValueError, match=message):
        PVT(arch)


@pytest.mark.parametrize('kwargs,message', [
    (dict(out_indices=(4,)), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PVT('tiny', **kwargs)


@pytest.mark.parametrize('shape', [(3, 64, 64), (1, 1, 64, 64), (1, 4, 64, 64), (1, 3, 0, 8)])
def test_bad_input_shape_raises_value_error_naming_expected_shape(shape):
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        PVT('tiny')(torch.zeros(shape))


# ---- the feed-forward's mode-specific implementations -----------------------------------------
def plain_feed_forward(ff, x):
    return ff.fc2(F.gelu(ff.fc1(x)))


def test_feed_forward_training_path_has_exact_gradients():
    from mmpvt.models.layers import FeedForward
    ff = FeedForward(8, 32).double()
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ff, (x,))


def test_feed_forward_training_path_equals_plain_form_in_fp32():
    from mmpvt.models.layers import FeedForward
    ff = FeedForward(64, 512)
    x = torch.randn(2, 100, 64, requires_grad=True)
    ours = ff(x)
    ours.square().mean().backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in ff.parameters()]
    x.grad = None
    ff.zero_grad()
    plain = plain_feed_forward(ff, x)
    plain.square().mean().backward()
    assert torch.equal(ours, plain)
    for a, b in zip(grads, [x.grad] + [p.grad for p in ff.parameters()]):
        assert torch.allclose(a, b, atol=1e-7, rtol=1e-6)


def test_feed_forward_inference_path_is_bit_identical():
    from mmpvt.models.layers import FeedForward
    ff = FeedForward(64, 512)
    x = torch.randn(1, 100, 64)
    with torch.no_grad():
        assert torch.equal(ff(x), plain_feed_forward(ff, x))


# ---- silent wrong answers and unclear errors (hardening) ----------------------------------------
def test_cached_position_table_follows_assign_loads_and_data_swaps(official_keys):
    model, _ = official_pvt(official_keys, 'tiny', seed=0)
    other, _ = official_pvt(official_keys, 'tiny', seed=1)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        model(x)  # fills the inference cache for this size
        model.load_state_dict(other.state_dict(), assign=True)  # new tensors, version counters 0
        for a, b in zip(model(x), other(x)):
            assert torch.equal(a, b)
        third, _ = official_pvt(official_keys, 'tiny', seed=2)
        for mine, theirs in zip(model.stages, third.stages):
            mine.pos_embed.data = theirs.pos_embed.data.clone()  # no version bump either
        assert not torch.equal(model(x)[0], other(x)[0])


def test_count_of_layer_forwards_proves_checkpointing_recomputes():
    from mmpvt.models.layers import PVTBlock
    model = PVT('tiny', drop_path_rate=0.0, with_cp=True)
    calls = []
    for m in model.modules():
        if isinstance(m, PVTBlock):
            m.register_forward_pre_hook(lambda *args: calls.append(1))
    loss = sum(o.square().mean() for o in model(torch.randn(1, 3, 64, 64)))
    assert len(calls) == 8
    loss.backward()
    assert len(calls) == 16


def test_bf16_gradients_agree_with_fp32_gradients(official_keys):
    """Cosine similarity of all weight gradients > 0.99 (bf16 keeps 8 mantissa bits)."""
    model, _ = official_pvt(official_keys, 'tiny')
    model.train()
    x = torch.randn(2, 3, 64, 64)

    def gradient(autocast):
        model.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            loss = sum(o.float().square().mean() for o in model(x))
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    ref, low = gradient(False), gradient(True)
    assert F.cosine_similarity(ref, low, dim=0).item() > 0.99


def test_out_indices_come_back_in_the_order_asked_and_an_int_selects_one():
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert [o.shape[1] for o in PVT('tiny', out_indices=(2, 1)).eval()(x)] == [320, 128]
        assert [o.shape[1] for o in PVT('tiny', out_indices=3).eval()(x)] == [512]


@pytest.mark.parametrize('kwargs,message', [
    (dict(out_indices=(0, 0)), 'out_indices must be distinct'),
    (dict(pretrain_img_size=0), 'pretrain_img_size'),
    (dict(drop_path_rate=1.5), r'drop_path_rate must be in \[0, 1\), got 1.5'),
    (dict(drop_path_rate=-0.5), 'drop_path_rate'),
    (dict(arch=dict(embed_dims=[64], depths=[1], num_heads=[0], mlp_ratios=[4], sr_ratios=[1],
                    patch_sizes=[4])), 'num_heads must be positive integers'),
    (dict(arch=dict(embed_dims=[64], depths=[1], num_heads=[1], mlp_ratios=[4], sr_ratios=[0],
                    patch_sizes=[4])), 'sr_ratios must be positive integers'),
    (dict(arch=dict(embed_dims=[64], depths=[0], num_heads=[1], mlp_ratios=[4], sr_ratios=[1],
                    patch_sizes=[4])), 'depths must be positive integers'),
])
def test_bad_values_are_rejected_when_the_model_is_built(kwargs, message):
    kwargs.setdefault('arch', 'tiny')
    with pytest.raises(ValueError, match=message):
        PVT(**kwargs)


@pytest.mark.parametrize('x,error,message', [
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), TypeError, 'floating-point'),
    (torch.zeros(1, 3, 32, 32, dtype=torch.float64), TypeError, 'torch.float64 differs'),
    ([torch.zeros(3, 32, 32)], TypeError, r'\(B, 3, H, W\) tensor, got list'),
])
def test_bad_input_type_gets_an_error_saying_what_is_expected(x, error, message):
    with pytest.raises(error, match=message):
        PVT('tiny')(x)
