"""Token <-> map reshapes and the size-dependent shortcuts that exporters must not see.

PVT's layers move between (B, N, C) tokens and (B, C, H, W) maps at every stage. Here is how they
do it without copies, and, while an exporter records the model (:func:`tracing_shapes`), how they
do it without a Python branch on a size: a branch on a traced size bakes the example's answer into
the graph (or makes torch.export specialise the dimension). Eager mode and torch.compile keep
their shortcuts, bit for bit.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..torch_compat import is_exporting

Grid = Tuple[int, int]


def tracing_shapes() -> bool:
    """True while torch.export (and the dynamo ONNX exporter) or the TorchScript tracer (the
    classic ONNX exporter) records the model: sizes are then symbols or traced values."""
    return torch.jit.is_tracing() or is_exporting()


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad a (B, C, H, W) map at the right/bottom so H and W are multiples of `multiple`."""
    pad_h = -x.shape[-2] % multiple
    pad_w = -x.shape[-1] % multiple
    if tracing_shapes():  # pad by a computed (maybe zero) amount: the graph serves every size
        return F.pad(x, (0, pad_w, 0, pad_h))
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


def tokens_to_map(x: Tensor, hw: Grid) -> Tensor:
    """(B, H*W, C) tokens -> (B, C, H, W) view with channels-last strides (no copy).

    Built as view(B, H, W, C).permute(0, 3, 1, 2), not transpose(1, 2).unflatten(...): for B = 1 the
    latter gives the batch dimension a stride that PyTorch does not read as channels-last, so its
    CPU convolutions copy the map to NCHW first and return NCHW (measured: a stage-1 depth-wise
    conv of PVTv2-B2 at 800x1333 took 440 ms that way, 70-80 ms on the proper view).
    """
    if tracing_shapes():  # contiguity may depend on the sizes (size-1 dims): no branch
        return x.reshape(x.shape[0], hw[0], hw[1], x.shape[2]).permute(0, 3, 1, 2)
    if x.is_contiguous():
        return x.view(x.shape[0], *hw, x.shape[2]).permute(0, 3, 1, 2)
    return x.transpose(1, 2).unflatten(2, hw)


def map_to_tokens(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H*W, C); a view when `x` has channels-last strides."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


def resize_pos_embed(pos_embed: Tensor, src_hw: Grid, dst_hw: Grid,
                     align_corners: bool = False) -> Tensor:
    """Bilinearly resize a (1, h*w, C) position table from grid `src_hw` to `dst_hw`.

    align_corners=False by default, as in the PVT authors' code, so official checkpoints give
    official features (the Trans2Seg head's table is resized with align_corners=True).
    """
    if not tracing_shapes() and tuple(src_hw) == tuple(dst_hw):
        return pos_embed  # (bilinear resizing to the same grid is the identity)
    grid = tokens_to_map(pos_embed, src_hw)
    grid = F.interpolate(grid, size=dst_hw, mode='bilinear', align_corners=align_corners)
    return grid.flatten(2).transpose(1, 2)


def adaptive_pool_matrix(n, out: int, like: Tensor) -> Tensor:
    """The (out, n) matrix of 1-D adaptive average pooling: row i averages the inputs
    [floor(i * n / out), ceil((i + 1) * n / out)), as ``nn.AdaptiveAvgPool2d`` does.

    `n` may be a symbolic or traced size. Exporters lower ``adaptive_avg_pool2d`` with bins
    computed from the example's size (measured: a b2-li graph exported at 224x320 gave errors of
    0.37 at 256x352 and failed at 97x131); built from `n` as tensors, the bins follow the input.
    """
    i = torch.arange(out, device=like.device)
    start = (i * n) // out
    end = ((i + 1) * n + out - 1) // out
    j = torch.arange(n, device=like.device)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


def adaptive_avg_pool(x: Tensor, out: int) -> Tensor:
    """(B, C, H, W) -> (B, C, out, out) adaptive average pooling: ``F.adaptive_avg_pool2d``
    eagerly, two matrix products (bins that follow the input's size) while exporting."""
    if not tracing_shapes():
        return F.adaptive_avg_pool2d(x, out)
    rows = adaptive_pool_matrix(x.shape[-2], out, x)
    cols = adaptive_pool_matrix(x.shape[-1], out, x)
    return rows @ x @ cols.transpose(0, 1)
