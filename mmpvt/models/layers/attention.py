"""Spatial-reduction attention (SRA), shared by PVT v1 and PVTv2.

Eq. (1)-(4) of the PVT paper: queries from every token, keys and values from a spatially reduced
copy of the input, so attention costs N x N / R^2 instead of N x N. PVTv2 keeps this module
unchanged and adds a *linear* variant (b2-li) whose reduction is a fixed 7 x 7 average pool.

The attention product runs through ``F.scaled_dot_product_attention``: fused kernels that never
keep an N x M attention matrix for backward (mmdet's port materialises and averages one).
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .embed import PATCH_NORM_EPS, map_to_tokens, pad_to_multiple, tokens_to_map, tracing_shapes

LINEAR_SRA_POOL = 7  # PVTv2 linear SRA: keys/values always come from a 7 x 7 grid


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
    """(B, C, H, W) -> (B, C, out, out) adaptive average pooling, as two matrix products."""
    rows = adaptive_pool_matrix(x.shape[-2], out, x)
    cols = adaptive_pool_matrix(x.shape[-1], out, x)
    return rows @ x @ cols.transpose(0, 1)


def check_head_split(embed_dims: int, num_heads: int, owner: str = '') -> None:
    """ValueError (prefixed with `owner`) unless `embed_dims` splits evenly into `num_heads`."""
    if embed_dims % num_heads:
        raise ValueError(f'{owner}embed_dims ({embed_dims}) must be divisible by num_heads '
                         f'({num_heads})')


class SpatialReductionAttention(nn.Module):
    """Multi-head attention whose keys and values come from a spatially reduced input.

    Reduction SR(x), by mode:

    * ``linear=False`` (v1, v2 b0-b5): LayerNorm(Conv_RxR,stride R(x)), the R x R patch projection
      W^S of eq. (3) as a convolution (checkpoint keys ``sr``, ``norm``); none for R == 1. Grids
      that R does not divide are zero-padded right/bottom (K/V grid ceil(h/R) x ceil(w/R)) where
      the authors' convolution would drop the last rows/columns or, for grids smaller than R, fail;
      on divisible grids (every stage once inputs are padded to 32) it is their computation.
    * ``linear=True`` (v2 b2-li, "linear SRA"): GELU(LayerNorm(Conv_1x1(AdaptiveAvgPool_7(x)))),
      49 K/V tokens whatever the input size, in every stage (sr_ratio is not used).

    Both LayerNorms use eps 1e-5, as the official checkpoints were trained.

    Args:
        embed_dims: width C (divisible by num_heads).
        num_heads: heads; head dim d = C / num_heads and the scale is d^-0.5.
        sr_ratio: R (ignored in linear mode).
        qkv_bias: bias in the q and kv projections (True in every official model).
        linear: linear SRA (PVTv2 b2-li).

    Shapes: tokens (B, h*w, C) with grid (h, w) -> (B, h*w, C).
    """

    def __init__(self, embed_dims: int, num_heads: int, sr_ratio: int = 1,
                 qkv_bias: bool = True, linear: bool = False) -> None:
        super().__init__()
        check_head_split(embed_dims, num_heads)
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.linear = linear
        # Separate q and kv projections (not one qkv) because K/V see the reduced input; the
        # kv output is laid out (2, heads, head_dim), k first, as in the official checkpoints.
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        if linear:
            self.pool = nn.AdaptiveAvgPool2d(LINEAR_SRA_POOL)
            self.sr = nn.Conv2d(embed_dims, embed_dims, 1)
            self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)
            self.act = nn.GELU()
        elif sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)

    def reduce(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        """SR(x): (B, h*w, C) -> (B, M, C) with M = 49 (linear) or ceil(h/R) * ceil(w/R)."""
        if self.linear:
            grid = tokens_to_map(x, hw)
            pooled = (adaptive_avg_pool(grid, LINEAR_SRA_POOL) if tracing_shapes()
                      else self.pool(grid))
            x = self.sr(pooled)
            return self.act(self.norm(map_to_tokens(x)))
        if self.sr_ratio == 1:
            return x
        x = self.sr(pad_to_multiple(tokens_to_map(x, hw), self.sr_ratio))
        return self.norm(map_to_tokens(x))

    def forward(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        B, N, C = x.shape
        heads = self.num_heads
        q = self.q(x).unflatten(-1, (heads, -1)).transpose(1, 2)          # B, heads, N, d
        kv = self.kv(self.reduce(x, hw)).unflatten(-1, (2, heads, -1))    # B, M, 2, heads, d
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)                        # B, heads, M, d
        x = F.scaled_dot_product_attention(q, k, v)                       # softmax(qk^T/sqrt d)v
        return self.proj(x.transpose(1, 2).reshape(B, N, C))
