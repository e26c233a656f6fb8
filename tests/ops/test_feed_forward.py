"""Specification of the feed-forward networks (mmpvt.families) through the fused tail of
mmpvt.ops.feed_forward.

Three kinds, each checked against its plain form (what the authors' code computes, written out):
v1 ``FeedForward`` (fc1, GELU, fc2), v2 ``ConvFeedForward`` (fc1, 3x3 depth-wise conv, GELU, fc2)
and the linear-SRA models' ``ConvFeedForward(relu=True)`` (ReLU after fc1).
"""
import pytest
import torch
import torch.nn.functional as F

from mmpvt.families.common import FeedForward
from mmpvt.families.pvt_v2 import ConvFeedForward
from mmpvt.ops import feed_forward

KINDS = {
    'v1': lambda c, h: FeedForward(c, h),
    'v2': lambda c, h: ConvFeedForward(c, h),
    'v2-relu': lambda c, h: ConvFeedForward(c, h, relu=True)
}


@pytest.fixture(params=list(KINDS))
def kind(request):
    return request.param


def build(kind, embed_dims, hidden_dims):
    return KINDS[kind](embed_dims, hidden_dims)


def plain_form(kind, ff, x, hw):
    """The official feed-forward of `kind`, with ff's weights."""
    h = ff.fc1(x)
    if kind == 'v2-relu':
        h = F.relu(h)
    if kind != 'v1':
        B, N, C = h.shape
        conv = ff.dwconv.dwconv
        h = F.conv2d(
            h.transpose(1, 2).reshape(B, C, *hw), conv.weight, conv.bias, padding=1,
            groups=C).flatten(2).transpose(1, 2)
    return ff.fc2(F.gelu(h))


def hidden_activations_kept(call, x, hidden):
    """How many distinct (B, N, hidden) tensors autograd keeps for the backward of call(x)."""
    storages = set()

    def pack(t):
        if t.numel() == x.shape[0] * x.shape[1] * hidden:
            storages.add(t.untyped_storage().data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        call(x)
    return len(storages)


def test_training_path_has_exact_gradients(kind):
    ff = build(kind, 4, 8).double()
    x = torch.randn(2, 12, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ff(t, (3, 4)), (x, ))


def test_training_path_has_exact_second_derivatives(kind):
    # gradient penalties and Hessian-vector products differentiate the backward itself
    # (autograd.grad(..., create_graph=True)); float64, input and every weight
    ff = build(kind, 2, 4).double()  # small: the check differentiates numerically twice
    x = torch.randn(1, 6, 2, dtype=torch.float64, requires_grad=True)
    weights = tuple(ff.parameters())

    def call(t, *params):
        return torch.func.functional_call(ff, dict(zip(dict(ff.named_parameters()), params)),
                                          (t, (2, 3)))

    assert torch.autograd.gradgradcheck(call, (x, *weights))


def test_a_gradient_penalty_gives_the_plain_forms_weight_gradients(kind):
    # fp32, the same computation as the official form: atol 1e-5, rtol 1e-4 (summation order)
    ff = build(kind, 8, 16)
    x = torch.randn(2, 12, 8)

    def penalty(call):
        t = x.clone().requires_grad_()
        (grad, ) = torch.autograd.grad(call(t).square().sum(), t, create_graph=True)
        ff.zero_grad()
        grad.square().sum().backward()
        return [p.grad.clone() for p in ff.parameters()]

    ours = penalty(lambda t: ff(t, (3, 4)))
    expected = penalty(lambda t: plain_form(kind, ff, t, (3, 4)))
    for a, b in zip(ours, expected):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


# Training path against the plain form, fp32. v1 runs the same fc1/GELU/fc2 kernels: bit-identical
# outputs; its gradients come from an explicit backward (fc2's products summed in another order):
# atol 1e-7, rtol 1e-6. v2's depth-wise conv runs on channels-last tokens, F.conv2d here on an
# NCHW copy: the nine products may be summed in another order, float32 rounding (atol 1e-6), and
# its backward adds the conv's explicit backward (atol 1e-6, rtol 1e-5).
@pytest.mark.parametrize('kind,atol,grad_atol,grad_rtol', [('v1', 0.0, 1e-7, 1e-6),
                                                           ('v2', 1e-6, 1e-6, 1e-5),
                                                           ('v2-relu', 1e-6, 1e-6, 1e-5)])
def test_training_path_equals_the_plain_form(kind, atol, grad_atol, grad_rtol):
    ff = build(kind, 32, 256)
    x = torch.randn(2, 6 * 10, 32, requires_grad=True)
    ours = ff(x, (6, 10))
    ours.square().mean().backward()
    grads = [x.grad.clone()] + [p.grad.clone() for p in ff.parameters()]
    x.grad = None
    ff.zero_grad()
    plain = plain_form(kind, ff, x, (6, 10))
    plain.square().mean().backward()
    assert (ours - plain).abs().max().item() <= atol
    for a, b in zip(grads, [x.grad] + [p.grad for p in ff.parameters()]):
        assert torch.allclose(a, b, atol=grad_atol, rtol=grad_rtol)


def test_inference_path_is_bit_identical_to_the_plain_form(kind):
    ff = build(kind, 32, 256)
    x = torch.randn(2, 6 * 10, 32)
    with torch.no_grad():  # the in-place path: same kernels, same order, same numbers
        assert torch.equal(ff(x, (6, 10)), plain_form(kind, ff, x, (6, 10)))


# The plain forms keep fc1's output (GELU's or the conv's input) and GELU's output (fc2's weight
# gradient); v2's also the conv's output (GELU's input).
@pytest.mark.parametrize('kind,plain_keeps', [('v1', 2), ('v2', 3), ('v2-relu', 3)])
def test_training_keeps_one_hidden_activation_for_backward(kind, plain_keeps):
    ff = build(kind, 16, 128)
    x = torch.randn(1, 8 * 8, 16, requires_grad=True)
    assert hidden_activations_kept(lambda t: ff(t, (8, 8)), x, 128) == 1
    assert hidden_activations_kept(lambda t: plain_form(kind, ff, t, (8, 8)), x, 128) == \
        plain_keeps


def test_frozen_feed_forward_gives_input_gradients_only(kind):
    ff = build(kind, 8, 32)
    ff.requires_grad_(False)
    x = torch.randn(1, 16, 8, requires_grad=True)
    ff(x, (4, 4)).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in ff.parameters())


def test_stacked_feed_forwards_sharing_the_workspace_have_the_plain_gradients(kind):
    # two layers run forward before either runs backward: GELU(fc1) of the first must not be
    # read back from a workspace the second has overwritten (float64: tolerance 1e-12)
    first, second = build(kind, 8, 48).double(), build(kind, 8, 48).double()
    x = torch.randn(2, 5 * 7, 8, dtype=torch.float64, requires_grad=True)
    grads = []
    for call in (lambda m, t: m(t, (5, 7)), lambda m, t: plain_form(kind, m, t, (5, 7))):
        out = call(second, call(first, x) * 1.5)
        params = [x, *first.parameters(), *second.parameters()]
        grads.append(torch.autograd.grad((out * out).sum(), params))
    for got, expected in zip(*grads):
        assert (got - expected).abs().max() < 1e-12


def test_cpu_workspace_is_reused_and_grows_per_dtype():
    feed_forward.release_workspaces()
    small, large = torch.empty(2, 3, 4), torch.empty(2, 5, 4)
    first = feed_forward.workspace(small)
    assert first.shape == small.shape and first.dtype == small.dtype
    assert feed_forward.workspace(small).data_ptr() == first.data_ptr()  # no new allocation
    grown = feed_forward.workspace(large)
    assert grown.shape == large.shape
    assert feed_forward.workspace(small).data_ptr() == grown.data_ptr()  # grown: serves both
    assert feed_forward.workspace(small.double()).dtype == torch.float64
    assert feed_forward.workspace_bytes() == (2 * 5 * 4) * 4 + (2 * 3 * 4) * 8
    feed_forward.release_workspaces()
    assert feed_forward.workspace_bytes() == 0


def test_a_threads_workspaces_are_freed_with_the_thread():
    import threading
    import weakref
    held = []

    def run():
        buffer = feed_forward.workspace(torch.empty(1000))
        held.append(weakref.ref(buffer._base if buffer._base is not None else buffer))
        assert feed_forward.workspace_bytes() == 4000

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    del thread
    import gc
    gc.collect()
    assert held[0]() is None  # the thread's buffer is gone with the thread
