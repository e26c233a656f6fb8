"""The fused tail of PVT's feed-forward, fc2(GELU(conv(h))), for CPU/GPU memory and speed.

v1's feed-forward is fc1 -> GELU -> fc2; v2's fc1 -> [ReLU] -> 3x3 depth-wise conv -> GELU -> fc2.
The function is exactly the authors'; what differs is how it is evaluated (both measured on CPU):

* inference: every elementwise op runs in place on a buffer that nobody else needs. At 800x1333 a
  stage-1 hidden activation is (67k tokens x 512) = 136 MB; not allocating a second one makes the
  feed-forward about 1.6x faster.
* training: autograd would keep fc1's output, the depth-wise conv's output and GELU's output,
  three (N, hidden) tensors per block, the largest activations of the network.
  :class:`ConvGELULinear` keeps only the first and recomputes the cheap depth-wise conv and GELU
  in backward (the costly fc2 product is not recomputed), so each block keeps one hidden-size
  tensor.
* its backward allocates as few new hidden-size tensors as it can (two with the conv, one
  without): on CPU a fresh tensor of that size is a fresh mapping whose first touch page-faults
  (measured, a (32 x 3136 x 512) GELU at 2 threads: 127 ms into a new tensor, 48 ms into an
  existing one), so GELU's derivative and GELU itself run in place on tensors backward owns.
  Without the conv (v1), GELU(fc1) is a temporary that only fc2 reads: on CPU it goes into a
  per-thread workspace (:func:`workspace`) reused across blocks instead of a new tensor each.
"""
import threading
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..torch_compat import compile_traces_fused_ffn, is_compiling
from .depthwise import depthwise_conv, depthwise_conv_backward
from .shapes import Grid, tracing_shapes

# One CPU buffer per thread and dtype. Kept in thread-local storage, so a thread's buffers are
# freed with the thread (data-loader or server threads come and go); release_workspaces() frees
# the calling thread's at once.
_THREAD = threading.local()


def workspace(like: Tensor) -> Tensor:
    """An uninitialised tensor shaped like `like` for a temporary that is dead before the next
    call: on CPU the calling thread's buffer for that dtype, grown to the largest size asked for;
    elsewhere (and under torch.compile) a new tensor (CUDA's caching allocator reuses memory
    itself; a compiled graph plans its own buffers)."""
    if like.device.type != 'cpu' or is_compiling():
        return torch.empty_like(like)
    buffers = _THREAD.__dict__.setdefault('buffers', {})
    buffer = buffers.get(like.dtype)
    if buffer is None or buffer.numel() < like.numel():
        buffer = buffers[like.dtype] = torch.empty(like.numel(), dtype=like.dtype)
    return buffer[:like.numel()].view(like.shape)


def workspace_bytes() -> int:
    """Bytes held by the calling thread's CPU workspaces."""
    buffers = getattr(_THREAD, 'buffers', {})
    return sum(b.numel() * b.element_size() for b in buffers.values())


def release_workspaces() -> None:
    """Free the calling thread's CPU workspaces (they are otherwise kept for reuse)."""
    _THREAD.__dict__.pop('buffers', None)


class ConvGELULinear(torch.autograd.Function):
    """fc2(GELU(conv(h))) with conv an optional depth-wise conv, keeping only `h` for backward.

    Backward recomputes conv(h) and GELU (elementwise and depth-wise: cheap) but never the fc2
    matrix product. Everything runs in `h`'s dtype (the autocast dtype under autocast).
    """

    @staticmethod
    def forward(ctx, h: Tensor, hw: Optional[Grid], conv_w: Optional[Tensor],
                conv_b: Optional[Tensor], weight: Tensor, bias: Tensor) -> Tensor:
        ctx.hw = hw
        ctx.save_for_backward(h, conv_w, conv_b, weight)
        dt = h.dtype
        if conv_w is None:
            a = torch.ops.aten.gelu.out(h, out=workspace(h))
        else:
            a = torch.ops.aten.gelu_(depthwise_conv(h, hw, conv_w.to(dt), conv_b.to(dt)))
        return F.linear(a, weight.to(dt), bias.to(dt))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if torch.is_grad_enabled():  # autograd.grad(..., create_graph=True): second derivatives
            return ConvGELULinear.differentiable_backward(ctx, grad_out)
        h, conv_w, conv_b, weight = ctx.saved_tensors
        dt = h.dtype
        need_h, _, need_cw, need_cb, need_w, need_b = ctx.needs_input_grad
        grad_out = grad_out.to(dt)
        rows = grad_out.reshape(-1, grad_out.shape[-1])
        grad_b = rows.sum(0).to(weight.dtype) if need_b else None
        # GELU's input: v1's is `h` itself (saved, not ours to overwrite), v2's the conv output,
        # recomputed here and ours
        pre = h if conv_w is None else depthwise_conv(h, ctx.hw, conv_w.to(dt), conv_b.to(dt))
        grad_a = grad_out @ weight.to(dt)
        torch.ops.aten.gelu_backward.grad_input(grad_a, pre, grad_input=grad_a)
        grad_w = None
        if need_w:  # GELU again, for fc2's weight: in place on our own copy, else a temporary
            act = (
                torch.ops.aten.gelu.out(h, out=workspace(h))
                if conv_w is None else torch.ops.aten.gelu_(pre))
            grad_w = (rows.t() @ act.reshape(-1, act.shape[-1])).to(weight.dtype)
        del pre
        if conv_w is None:
            return grad_a, None, None, None, grad_w, grad_b
        grad_h, grad_cw, grad_cb = depthwise_conv_backward(grad_a, h, ctx.hw, conv_w.to(dt), need_h,
                                                           need_cw, need_cb)
        return (grad_h, None, None if grad_cw is None else grad_cw.to(conv_w.dtype),
                None if grad_cb is None else grad_cb.to(conv_b.dtype), grad_w, grad_b)

    @staticmethod
    def differentiable_backward(ctx, grad_out: Tensor):
        """The same gradients as :meth:`backward`, computed with differentiable ops (no out=,
        nothing in place) on the saved tensors, so that autograd records them: what a gradient
        penalty or a Hessian-vector product needs. The forward is recomputed as plain ops (its
        bias does not enter any gradient but its own)."""
        h, conv_w, conv_b, weight = ctx.saved_tensors
        dt = h.dtype
        need_h, _, need_cw, need_cb, need_w, need_b = ctx.needs_input_grad
        inputs = [
            t for t, need in ((h, need_h), (conv_w, need_cw), (conv_b, need_cb), (weight, need_w))
            if need
        ]
        grads = iter(())
        if inputs:
            with torch.enable_grad():
                pre = h if conv_w is None else depthwise_conv(h, ctx.hw, conv_w.to(dt),
                                                              conv_b.to(dt))
                out = F.linear(F.gelu(pre), weight.to(dt))
            grads = iter(torch.autograd.grad(out, inputs, grad_out.to(dt), create_graph=True))
        grad_b = grad_out.reshape(-1, grad_out.shape[-1]).sum(0).to(weight.dtype) if need_b \
            else None
        grad_h, grad_cw, grad_cb, grad_w = (
            next(grads) if need else None for need in (need_h, need_cw, need_cb, need_w))
        return grad_h, None, grad_cw, grad_cb, grad_w, grad_b


def _conv(h: Tensor, hw: Optional[Grid], conv: Optional[nn.Conv2d]) -> Tensor:
    if conv is None:
        return h
    return depthwise_conv(h, hw, conv.weight, conv.bias, conv.groups, conv.kernel_size[0])


def plain_conv_gelu_linear(h: Tensor, hw: Optional[Grid], conv: Optional[nn.Conv2d],
                           fc2: nn.Linear) -> Tensor:
    """fc2(GELU(conv(h))) as plain PyTorch ops: the definition the fused path is tested against."""
    return fc2(F.gelu(_conv(h, hw, conv)))


def fused_conv_gelu_linear(h: Tensor, hw: Optional[Grid], conv: Optional[nn.Conv2d],
                           fc2: nn.Linear) -> Tensor:
    """fc2(GELU(conv(h))), `h` (B, N, hidden) on grid `hw`, conv a depth-wise nn.Conv2d or None.

    Without autograd: in place on `h`'s buffer (h is consumed). With autograd: through
    :class:`ConvGELULinear`. While exporting, and under torch.compile on a torch that cannot trace
    a custom Function, the plain ops.
    """
    if tracing_shapes():  # an exporter records plain ops (a custom Function with traced sizes
        return plain_conv_gelu_linear(h, hw, conv, fc2)  # as arguments cannot be exported)
    needs_graph = torch.is_grad_enabled() and (
        h.requires_grad or fc2.weight.requires_grad or fc2.bias.requires_grad or
        (conv is not None and any(p.requires_grad for p in conv.parameters())))
    if not needs_graph:
        return fc2(torch.ops.aten.gelu_(_conv(h, hw, conv)))
    if not compile_traces_fused_ffn():
        return plain_conv_gelu_linear(h, hw, conv, fc2)
    return ConvGELULinear.apply(h, hw, None if conv is None else conv.weight,
                                None if conv is None else conv.bias, fc2.weight, fc2.bias)
