"""Specification of spatial-reduction attention (mmpvt.families.common)."""
import pytest
import torch
import torch.nn.functional as F

from mmpvt.families.common import SpatialReductionAttention
from ..models.reference_pvt import explicit_attention


@pytest.mark.parametrize('hw,sr', [((16, 16), 8), ((13, 21), 8), ((5, 3), 8), ((7, 9), 2),
                                   ((6, 6), 1)])
def test_sdpa_attention_equals_explicit_softmax_form(hw, sr):
    """fp32, tolerance 1e-5: the fused kernel sums the softmax products in another order."""
    attn = SpatialReductionAttention(64, num_heads=2, sr_ratio=sr).eval()
    x = torch.randn(2, hw[0] * hw[1], 64)
    B, N, C = x.shape
    with torch.no_grad():
        q = attn.q(x).reshape(B, N, 2, 32).transpose(1, 2)
        k, v = attn.kv(attn.reduce(x, hw)).reshape(B, -1, 2, 2, 32).permute(2, 0, 3, 1, 4)
        expected = attn.proj(explicit_attention(q, k, v).transpose(1, 2).reshape(B, N, C))
        assert (attn(x, hw) - expected).abs().max().item() < 1e-5


@pytest.mark.parametrize(
    'hw,sr,expected_kv',
    [
        ((16, 24), 8, 2 * 3),  # divisible: exactly the official reduction
        ((13, 21), 8, 2 * 3),  # not divisible: zero-padded to 16 x 24, nothing dropped
        ((10, 12), 8, 2 * 2),  # PVTv2-B0 stage 1 of a 37 x 45 image: padded to 16 x 16
        ((5, 3), 8, 1),  # smaller than R: one K/V token (the official code crashes)
        ((7, 7), 1, 49),  # R = 1: no reduction
    ])
def test_kv_reduction_pads_grid_to_multiple_of_r(hw, sr, expected_kv):
    attn = SpatialReductionAttention(64, num_heads=1, sr_ratio=sr)
    assert attn.reduce(torch.randn(1, hw[0] * hw[1], 64), hw).shape == (1, expected_kv, 64)


def test_kv_reduction_of_divisible_grid_is_official_conv():
    attn = SpatialReductionAttention(64, num_heads=1, sr_ratio=8)
    x = torch.randn(1, 16 * 24, 64)
    with torch.no_grad():
        conv = F.conv2d(
            x.transpose(1, 2).reshape(1, 64, 16, 24), attn.sr.weight, attn.sr.bias, stride=8)
        expected = F.layer_norm(
            conv.flatten(2).transpose(1, 2), (64, ), attn.norm.weight, attn.norm.bias, 1e-5)
        # channels-last vs NCHW kernels sum the 64 products in another order: float32 rounding
        assert torch.allclose(attn.reduce(x, (16, 24)), expected, atol=1e-5, rtol=0)
