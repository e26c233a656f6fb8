"""The speed machinery, apart from the model: what the layers call where a plain PyTorch
expression would be slower or keep more memory.

The interface the families use is three functions:

* :func:`conv_gelu_linear` ``(h, hw, conv, fc2)``: the feed-forward's tail fc2(GELU(conv(h)))
  (:mod:`.feed_forward`: in place without autograd, a memory-saving autograd Function with it);
* :func:`depthwise_conv`: a depth-wise convolution of channels-last tokens (:mod:`.depthwise`);
* the token/map reshapes and export-safe shortcuts of :mod:`.shapes`.

``use_fused_ops(False)`` (or ``MMPVT_FUSED_OPS=0`` in the environment) switches every layer to the
plain PyTorch expression of the same function, :func:`plain_conv_gelu_linear`, which is what the
tests compare the fused path against. :func:`release_workspaces` frees the CPU buffers the fused
path reuses.
"""
import contextlib
import os
from typing import Iterator, Optional

from torch import Tensor, nn

from .depthwise import depthwise_conv, depthwise_conv_backward
from .feed_forward import (ConvGELULinear, fused_conv_gelu_linear, plain_conv_gelu_linear,
                           release_workspaces, workspace_bytes)
from .shapes import (Grid, adaptive_avg_pool, map_to_tokens, pad_to_multiple, resize_pos_embed,
                     tokens_to_map, tracing_shapes)

_FUSED = [os.environ.get('MMPVT_FUSED_OPS', '1') != '0']


def fused_ops_enabled() -> bool:
    """Whether the layers take the fused path (default) or the plain PyTorch ops."""
    return _FUSED[0]


@contextlib.contextmanager
def use_fused_ops(enabled: bool) -> Iterator[None]:
    """Within the block, the layers take the fused path (`enabled`) or the plain ops."""
    previous, _FUSED[0] = _FUSED[0], bool(enabled)
    try:
        yield
    finally:
        _FUSED[0] = previous


def conv_gelu_linear(h: Tensor, hw: Optional[Grid], conv: Optional[nn.Conv2d],
                     fc2: nn.Linear) -> Tensor:
    """fc2(GELU(conv(h))): (B, N, hidden) tokens on grid `hw` -> (B, N, C_out); `conv` a
    depth-wise ``nn.Conv2d`` or None (v1). Fused unless switched off (then `h` is left intact;
    the fused path may overwrite it)."""
    if _FUSED[0]:
        return fused_conv_gelu_linear(h, hw, conv, fc2)
    return plain_conv_gelu_linear(h, hw, conv, fc2)


__all__ = [
    'Grid', 'ConvGELULinear', 'adaptive_avg_pool', 'conv_gelu_linear', 'depthwise_conv',
    'depthwise_conv_backward', 'fused_ops_enabled', 'map_to_tokens', 'pad_to_multiple',
    'plain_conv_gelu_linear', 'release_workspaces', 'resize_pos_embed', 'tokens_to_map',
    'tracing_shapes', 'use_fused_ops', 'workspace_bytes'
]
