"""Depth-wise k x k convolution (stride 1, zero padding k // 2) of channels-last tokens.

PVTv2's feed-forward convolves (B, N, hidden) tokens, i.e. a channels-last (B, H, W, C) map. Both
directions go straight to PyTorch's convolution kernels (oneDNN on CPU, cuDNN on GPU) on a
channels-last view of the tokens, so no layout is ever changed; the backward is called explicitly
(``aten.convolution_backward``) because the fused feed-forward (:mod:`.feed_forward`) recomputes
the forward instead of keeping it.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .shapes import Grid, map_to_tokens, tokens_to_map


def depthwise_conv(h: Tensor, hw: Grid, weight: Tensor, bias: Optional[Tensor],
                   channels: Optional[int] = None, kernel: Optional[int] = None) -> Tensor:
    """(B, N, C) tokens on grid `hw` -> (B, N, C); weight (C, 1, k, k), bias (C,) or None.

    `channels` (C) and `kernel` (k) as Python ints, given by modules that know them: the ONNX
    exporters need groups and padding as constants, and while tracing even a weight's sizes are
    traced values that ``int()`` would freeze (with a TracerWarning). Default: read off `weight`.
    """
    channels = weight.shape[0] if channels is None else channels
    kernel = weight.shape[-1] if kernel is None else kernel
    out = F.conv2d(tokens_to_map(h, hw), weight, bias, padding=kernel // 2, groups=channels)
    return map_to_tokens(out)


def depthwise_conv_backward(
        grad: Tensor, h: Tensor, hw: Grid, weight: Tensor, need_input: bool, need_weight: bool,
        need_bias: bool) -> Tuple[Optional[Tensor], Optional[Tensor], Optional[Tensor]]:
    """(grad_h, grad_weight, grad_bias) of :func:`depthwise_conv` for the output gradient `grad`
    (None where not needed).

    The input gradient and the weight/bias gradients are two calls: oneDNN's depth-wise backward
    asked for all three at once took 297 ms on a (32, 512, 56, 56) channels-last map at 2 threads,
    the two calls 80 + 60 ms (measured on CPU).
    """
    C, k = h.shape[-1], weight.shape[-1]
    grad_map, x_map = tokens_to_map(grad.contiguous(), hw), tokens_to_map(h, hw)

    def backward(mask):
        return torch.ops.aten.convolution_backward(grad_map, x_map, weight,
                                                   [C] if mask[2] else None, [1, 1],
                                                   [k // 2, k // 2], [1, 1], False, [0, 0], C, mask)

    grad_h = backward([True, False, False])[0] if need_input else None
    grad_w = grad_b = None
    if need_weight or need_bias:
        _, grad_w, grad_b = backward([False, need_weight, need_bias])
    return (map_to_tokens(grad_h) if need_input else None), grad_w, grad_b
