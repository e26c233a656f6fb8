"""Specification of the layers shared by PVT v1 and PVTv2 (mmpvt.models.layers)."""
import pytest
import torch
import torch.nn.functional as F

from mmpvt.models.layers import ConvFeedForward, FeedForward, OverlapPatchEmbed, PatchEmbed


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
