"""Specification of the channels-last depth-wise convolution (mmpvt.ops.depthwise)."""
import pytest
import torch
import torch.nn.functional as F

from mmpvt.ops import depthwise_conv, depthwise_conv_backward


@pytest.mark.parametrize('B,hw,C,k', [(2, (6, 10), 64, 3), (1, (1, 1), 8, 3), (1, (5, 3), 4, 3),
                                      (2, (7, 9), 16, 5)])
def test_depthwise_conv_of_tokens_and_its_explicit_backward_equal_autograd(B, hw, C, k):
    """Against a plain NCHW conv2d and autograd, float64: tolerance 1e-12 (a few ulps of sums of
    k * k products)."""
    h = torch.randn(B, hw[0] * hw[1], C, dtype=torch.float64, requires_grad=True)
    w = torch.randn(C, 1, k, k, dtype=torch.float64, requires_grad=True)
    b = torch.randn(C, dtype=torch.float64, requires_grad=True)
    nchw = h.transpose(1, 2).reshape(B, C, *hw).contiguous()
    ref = F.conv2d(nchw, w, b, padding=k // 2, groups=C).flatten(2).transpose(1, 2)
    g = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, (h, w, b), g)
    with torch.no_grad():
        assert (depthwise_conv(h, hw, w, b) - ref).abs().max() < 1e-12
        got = depthwise_conv_backward(g, h, hw, w, True, True, True)
    for a, e in zip(got, expected):
        assert a.shape == e.shape and (a - e).abs().max() < 1e-12


@pytest.mark.parametrize('need', [(True, False, False), (False, True, False), (False, False, True),
                                  (False, True, True), (True, True, True)])
def test_explicit_backward_gives_exactly_the_gradients_asked_for(need):
    """Frozen conv weights, or an input that needs no gradient: the others are None, the asked
    ones equal autograd's (float64, 1e-12)."""
    hw, C = (4, 6), 8
    h = torch.randn(2, 24, C, dtype=torch.float64, requires_grad=True)
    w = torch.randn(C, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(C, dtype=torch.float64, requires_grad=True)
    ref = depthwise_conv(h, hw, w, b)
    g = torch.randn_like(ref)
    expected = torch.autograd.grad(ref, (h, w, b), g)
    with torch.no_grad():
        got = depthwise_conv_backward(g, h, hw, w, *need)
    for asked, a, e in zip(need, got, expected):
        assert (a is None) != asked
        if asked:
            assert (a - e).abs().max() < 1e-12
