"""Specification of the layers shared by PVT v1 and PVTv2 (mmpvt.models.layers)."""
import pytest
import torch
import torch.nn.functional as F

from mmpvt.models.layers import ConvFeedForward, FeedForward, OverlapPatchEmbed, PatchEmbed
from mmpvt.models.layers.dwconv import depthwise_conv, depthwise_conv_backward


def plain_conv_ffn(ff, x, hw):
    """The official v2 FFN, written out: fc1, [ReLU], 3x3 depth-wise conv, GELU, fc2."""
    h = ff.fc1(x)
    if ff.relu:
        h = F.relu(h)
    B, N, C = h.shape
    conv = ff.dwconv.dwconv
    h = F.conv2d(h.transpose(1, 2).reshape(B, C, *hw), conv.weight, conv.bias, padding=1, groups=C)
    return ff.fc2(F.gelu(h.flatten(2).transpose(1, 2)))


def saved_hidden_activations(module, x, hw, hidden):
    """Number of (B, N, hidden)-sized tensors autograd keeps for backward."""
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x, hw)
    return sum(n == x.shape[0] * x.shape[1] * hidden for n in sizes)


@pytest.mark.parametrize('relu', [False, True])
def test_conv_ffn_training_path_has_exact_gradients(relu):
    ff = ConvFeedForward(4, 8, relu=relu).double()
    x = torch.randn(2, 12, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ff(t, (3, 4)), (x,))


@pytest.mark.parametrize('relu', [False, True])
def test_conv_ffn_equals_the_plain_form_in_training_and_inference(relu):
    ff = ConvFeedForward(32, 256, relu=relu)
    x = torch.randn(2, 6 * 10, 32, requires_grad=True)
    ours = ff(x, (6, 10))
    ours.square().mean().backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in ff.parameters()]
    x.grad = None
    ff.zero_grad()
    plain = plain_conv_ffn(ff, x, (6, 10))
    plain.square().mean().backward()
    assert torch.allclose(ours, plain, atol=1e-6, rtol=0)
    for a, b in zip(grads, [x.grad] + [p.grad for p in ff.parameters()]):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    with torch.no_grad():  # the in-place inference path: same numbers, bit for bit
        assert torch.equal(ff(x, (6, 10)), plain_conv_ffn(ff, x, (6, 10)))


def test_conv_ffn_keeps_one_hidden_activation_for_backward():
    """fc1's output only; the depth-wise conv and GELU outputs are recomputed (the plain form
    keeps three (N, hidden) tensors)."""
    ff = ConvFeedForward(16, 128)
    x = torch.randn(1, 8 * 8, 16, requires_grad=True)
    assert saved_hidden_activations(ff, x, (8, 8), 128) == 1
    assert saved_hidden_activations(lambda t, hw: plain_conv_ffn(ff, t, hw), x, (8, 8), 128) == 3


def test_v1_ffn_keeps_one_hidden_activation_for_backward():
    ff = FeedForward(16, 128)
    x = torch.randn(1, 64, 16, requires_grad=True)
    assert saved_hidden_activations(ff, x, None, 128) == 1


def test_frozen_conv_ffn_gives_input_gradients_only():
    ff = ConvFeedForward(8, 32)
    ff.requires_grad_(False)
    x = torch.randn(1, 16, 8, requires_grad=True)
    ff(x, (4, 4)).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in ff.parameters())


@pytest.mark.parametrize('hw', [(224, 224), (33, 47), (1, 1), (6, 5)])
def test_patch_embeddings_give_ceil_grids(hw):
    """Hand count: v1 P=4 pads to a multiple of 4; v2 (k7, s4, p3) gives (H - 1) // 4 + 1."""
    _, grid_v1 = PatchEmbed(3, 8, 4)(torch.randn(1, 3, *hw))
    _, grid_v2 = OverlapPatchEmbed(3, 8, 7, 4)(torch.randn(1, 3, *hw))
    expected = tuple((s + 3) // 4 for s in hw)
    assert grid_v1 == expected and grid_v2 == expected


# ---- the channels-last depth-wise convolution -------------------------------------------------
@pytest.mark.parametrize('B,hw,C,k', [(2, (6, 10), 64, 3), (1, (1, 1), 8, 3), (1, (5, 3), 4, 3),
                                      (2, (7, 9), 16, 5)])
def test_depthwise_conv_of_tokens_and_its_explicit_backward_equal_autograd(B, hw, C, k):
    """Against a plain NCHW conv2d and autograd, float64, tolerance 1e-12."""
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


@pytest.mark.parametrize('B', [1, 2])
def test_token_maps_are_channels_last_views(B):
    """Convolutions must see channels-last strides, or oneDNN copies the map to NCHW first."""
    from mmpvt.models.layers import map_to_tokens, tokens_to_map
    x = torch.randn(B, 6 * 5, 16)
    grid = tokens_to_map(x, (6, 5))
    assert grid.shape == (B, 16, 6, 5) and grid.data_ptr() == x.data_ptr()
    assert grid.is_contiguous(memory_format=torch.channels_last)
    out = F.conv2d(grid, torch.randn(16, 1, 3, 3), padding=1, groups=16)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert map_to_tokens(out).is_contiguous()
