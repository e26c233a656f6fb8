"""Patch embeddings of PVT v1 and PVTv2, the token <-> map reshapes they share, and the resizing
of v1's position tables (used by the backbone and by checkpoint loading alike).

Both embeddings turn a (B, C_in, H, W) map into (B, h*w, C) tokens plus their grid (h, w), with
h = ceil(H / stride) and w = ceil(W / stride), so that no border pixel is ever dropped:

* :class:`PatchEmbed` (v1, Sec. 3.2 of the paper): non-overlapping P x P patches, a convolution
  with kernel = stride = P. The authors floor H/P; we zero-pad right/bottom first.
* :class:`OverlapPatchEmbed` (v2): a k x k convolution with stride s and padding k // 2
  (7/4/3 in stage 1, 3/2/1 later). For k = 2s - 1 its output is ceil(H/s) by construction, so it
  is the authors' computation unchanged.

Both end in a LayerNorm with PyTorch's default eps 1e-5, as the official checkpoints were trained.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...torch_compat import is_exporting

PATCH_NORM_EPS = 1e-5  # patch_embed*.norm and attn.norm: nn.LayerNorm's default in both releases
BLOCK_NORM_EPS = 1e-6  # block norm1/norm2 (v1, v2) and the per-stage norm (v2)

Grid = Tuple[int, int]


def tracing_shapes() -> bool:
    """True while torch.export (and the dynamo ONNX exporter) or the TorchScript tracer (the
    classic ONNX exporter) records the model.

    Sizes are then symbols or traced values: a Python branch on a size would bake the example's
    answer into the graph (or make torch.export specialise the dimension), and a Python-side
    cache would be skipped by the trace. Code that takes a size-dependent shortcut in eager mode
    takes the general path instead while this is True; eager mode and torch.compile keep their
    shortcuts, bit for bit.
    """
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


def map_to_tokens(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H*W, C); a view when `x` has channels-last strides."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


class PatchEmbed(nn.Module):
    """PVT v1: linear projection of non-overlapping P x P patches, then LayerNorm.

    Args:
        in_channels: channels of the input map.
        embed_dims: output width C.
        patch_size: P; the projection is a P x P convolution with stride P.

    Shapes: (B, in_channels, H, W) -> tokens (B, ceil(H/P) * ceil(W/P), C) and that grid (h, w).
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)

    def forward(self, x: Tensor) -> Tuple[Tensor, Grid]:
        x = self.proj(pad_to_multiple(x, self.patch_size))
        return self.norm(map_to_tokens(x)), (x.shape[2], x.shape[3])


class OverlapPatchEmbed(nn.Module):
    """PVTv2: overlapping patch embedding, a k x k convolution with stride s and padding k // 2.

    Args:
        in_channels: channels of the input map.
        embed_dims: output width C.
        patch_size: kernel k (7 in stage 1, 3 later).
        stride: s (4 in stage 1, 2 later).

    Shapes: (B, in_channels, H, W) -> tokens (B, h*w, C) and (h, w) = (ceil(H/s), ceil(W/s))
    (for k = 2s - 1, the official configuration).
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=stride,
                              padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)

    def forward(self, x: Tensor) -> Tuple[Tensor, Grid]:
        x = self.proj(x)
        return self.norm(map_to_tokens(x)), (x.shape[2], x.shape[3])
