"""Feed-forward networks of PVT v1 and PVTv2, implemented for CPU/GPU memory and speed.

v1 (:class:`FeedForward`):      fc1 -> GELU -> fc2
v2 (:class:`ConvFeedForward`):  fc1 -> [ReLU, linear mode only] -> 3x3 depth-wise conv -> GELU
                                -> fc2

The function is exactly the authors'; what differs is how it is evaluated (both measured on CPU):

* inference: every elementwise op runs in place on a buffer that nobody else needs. At 800x1333 a
  stage-1 hidden activation is (67k tokens x 512) = 136 MB; not allocating a second one makes the
  FFN about 1.6x faster.
* training: autograd would keep fc1's output, the depth-wise conv's output and GELU's output, three
  (N, hidden) tensors per block, the largest activations of the network. :class:`_ConvGELULinear`
  keeps only the first and recomputes the cheap depth-wise conv and GELU in backward (the costly
  fc2 product is not recomputed), so each block keeps one hidden-size tensor.
* its backward allocates as few new hidden-size tensors as it can (two with the conv, one
  without): on CPU a fresh tensor of that size is a fresh mapping whose first touch page-faults
  (measured, a (32 x 3136 x 512) GELU at 2 threads: 127 ms into a new tensor, 48 ms into an
  existing one), so GELU's derivative and GELU itself run in place on tensors backward owns.
  Without the conv (v1), GELU(fc1) is a temporary that only fc2 reads: on CPU it goes into a
  reused per-thread workspace (:func:`_workspace`) instead of a new tensor each block.

fc1/fc2 are ``nn.Linear`` on (B, N, C) tokens (the official checkpoints' shapes); the depth-wise
conv
works on the same memory as a channels-last map (:mod:`.dwconv`), so no layout is ever changed.
"""
import threading
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...torch_compat import autocast_dtype, autocast_enabled, compile_traces_fused_ffn, is_compiling
from .dwconv import depthwise_conv, depthwise_conv_backward
from .embed import Grid, tracing_shapes

_WORKSPACES: Dict[Tuple[int, torch.device, torch.dtype], Tensor] = {}


def _workspace(like: Tensor) -> Tensor:
    """An uninitialised tensor shaped like `like` for a temporary that is dead before the next
    call: CPU memory reused across calls (one buffer per thread, device and dtype, grown to the
    largest size asked for), elsewhere a new tensor (CUDA's caching allocator reuses memory
    itself). See the module docstring for why."""
    if like.device.type != 'cpu' or is_compiling():
        return torch.empty_like(like)  # (a compiled graph plans its own buffers)
    key = (threading.get_ident(), like.device, like.dtype)
    buffer = _WORKSPACES.get(key)
    if buffer is None or buffer.numel() < like.numel():
        buffer = _WORKSPACES[key] = torch.empty(like.numel(), dtype=like.dtype)
    return buffer[:like.numel()].view(like.shape)


def release_workspaces() -> None:
    """Free the CPU workspaces of :func:`_workspace` (they are otherwise kept for reuse)."""
    _WORKSPACES.clear()


class _ConvGELULinear(torch.autograd.Function):
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
            a = torch.ops.aten.gelu.out(h, out=_workspace(h))
        else:
            a = torch.ops.aten.gelu_(depthwise_conv(h, hw, conv_w.to(dt), conv_b.to(dt)))
        return F.linear(a, weight.to(dt), bias.to(dt))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        if torch.is_grad_enabled():  # autograd.grad(..., create_graph=True): second derivatives
            return _ConvGELULinear.differentiable_backward(ctx, grad_out)
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
            act = (torch.ops.aten.gelu.out(h, out=_workspace(h)) if conv_w is None
                   else torch.ops.aten.gelu_(pre))
            grad_w = (rows.t() @ act.reshape(-1, act.shape[-1])).to(weight.dtype)
        del pre
        if conv_w is None:
            return grad_a, None, None, None, grad_w, grad_b
        grad_h, grad_cw, grad_cb = depthwise_conv_backward(
            grad_a, h, ctx.hw, conv_w.to(dt), need_h, need_cw, need_cb)
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
        inputs = [t for t, need in ((h, need_h), (conv_w, need_cw), (conv_b, need_cb),
                                    (weight, need_w)) if need]
        grads = iter(())
        if inputs:
            with torch.enable_grad():
                pre = h if conv_w is None else depthwise_conv(h, ctx.hw, conv_w.to(dt),
                                                              conv_b.to(dt))
                out = F.linear(F.gelu(pre), weight.to(dt))
            grads = iter(torch.autograd.grad(out, inputs, grad_out.to(dt), create_graph=True))
        grad_b = grad_out.reshape(-1, grad_out.shape[-1]).sum(0).to(weight.dtype) if need_b \
            else None
        grad_h, grad_cw, grad_cb, grad_w = (next(grads) if need else None
                                            for need in (need_h, need_cw, need_cb, need_w))
        return grad_h, None, grad_cw, grad_cb, grad_w, grad_b


class FeedForward(nn.Module):
    """PVT v1 feed-forward: fc1 (C -> hidden), GELU, fc2 (hidden -> C).

    Shapes: (B, N, C) -> (B, N, C); `hw` is accepted (and unused) so v1 and v2 blocks share code.
    """

    def __init__(self, embed_dims: int, hidden_dims: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def _needs_graph(self, h: Tensor) -> bool:
        """Whether autograd records this call (else the in-place inference path is taken).

        Never while an exporter traces the model: the graph it records is the plain forward
        (a custom autograd function with traced sizes as arguments cannot be exported)."""
        if tracing_shapes():
            return False
        return torch.is_grad_enabled() and (
            h.requires_grad or any(p.requires_grad for p in self.parameters()))

    def _hidden(self, x: Tensor) -> Tensor:
        """fc1 and whatever precedes the depth-wise conv, in the compute dtype."""
        h = self.fc1(x)
        if autocast_enabled(h.device.type):  # fc2 runs in the autocast dtype too
            h = h.to(autocast_dtype(h.device.type))
        return h

    def forward(self, x: Tensor, hw: Optional[Grid] = None) -> Tensor:
        h = self._hidden(x)
        if not self._needs_graph(h):
            return self.fc2(torch.ops.aten.gelu_(h))
        if not compile_traces_fused_ffn():
            return self.fc2(F.gelu(h))
        return _ConvGELULinear.apply(h, None, None, None, self.fc2.weight, self.fc2.bias)


class DepthwiseConv(nn.Module):
    """3x3 depth-wise convolution; its own module so the checkpoint key is ``dwconv.dwconv``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, h: Tensor, hw: Grid) -> Tensor:
        conv = self.dwconv
        return depthwise_conv(h, hw, conv.weight, conv.bias, conv.groups, conv.kernel_size[0])


class ConvFeedForward(FeedForward):
    """PVTv2 convolutional feed-forward: fc1, [ReLU if `relu`], 3x3 depth-wise conv, GELU, fc2.

    The depth-wise conv (zero padding 1) gives the FFN the positional information that v2 has no
    position table for. `relu` is set in linear-SRA models (b2-li), as in the official code.

    Shapes: tokens (B, h*w, C) with grid (h, w) -> (B, h*w, C).
    """

    def __init__(self, embed_dims: int, hidden_dims: int, relu: bool = False) -> None:
        super().__init__(embed_dims, hidden_dims)
        self.dwconv = DepthwiseConv(hidden_dims)
        self.relu = relu

    def _hidden(self, x: Tensor) -> Tensor:
        h = super()._hidden(x)
        return torch.relu_(h) if self.relu else h  # fc1's output is not needed by its backward

    def forward(self, x: Tensor, hw: Optional[Grid] = None) -> Tensor:
        h = self._hidden(x)
        conv = self.dwconv.dwconv
        if not self._needs_graph(h):
            return self.fc2(torch.ops.aten.gelu_(self.dwconv(h, hw)))
        if not compile_traces_fused_ffn():
            return self.fc2(F.gelu(self.dwconv(h, hw)))
        return _ConvGELULinear.apply(h, hw, conv.weight, conv.bias, self.fc2.weight,
                                     self.fc2.bias)
