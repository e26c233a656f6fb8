"""Pyramid Vision Transformer (PVT v1), Wang et al., ICCV 2021.

The file reads bottom-up, as the paper builds the network (Sec. 3; the variants of Table 1 are
:data:`mmpvt.models.archs.PVT_ARCHS`):

    PVTStage -> PVT

Patch embedding, spatial-reduction attention and the encoder layer live in :mod:`mmpvt.models.layers`,
shared with PVTv2. What is v1's own: non-overlapping patch embedding and an absolute position table
per stage (no stage norm, no convolution in the feed-forward).

Choices that differ from a literal transcription of the authors' code, and why:

* Sizes that a patch size does not divide are zero-padded at the right/bottom instead of floored,
  so no border pixel is dropped: stage outputs are ceil(H/4), ceil(H/8), ceil(H/16), ceil(H/32).
  The K/V reduction pads its grid the same way. For sizes that 32 divides (always the case after
  mmdet/mmseg pad inputs to 32) nothing changes.
* Attention runs through ``F.scaled_dot_product_attention``; numerically it is eq. (4).
* LayerNorm eps follows what the official checkpoints were trained with: 1e-6 in the blocks,
  1e-5 in patch embedding and in the K/V reduction. (mmdet's port uses 1e-6 everywhere, which
  moves its features about 2e-4 away from the official model's.)
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...registry import MODELS
from ..archs import PVT_ARCH_KEYS, PVT_ARCHS
from ..layers import PatchEmbed, PVTBlock, resize_pos_embed, run_blocks
from .base import PyramidVisionBackbone, drop_path_schedule, parse_arch

class PVTStage(nn.Module):
    """One pyramid stage: patch embedding, absolute position embedding, L_i encoder layers.

    The position table lives on the pre-training grid `pos_grid` (224 px: 56², 28², 14², 7²) and is
    resized (bilinearly, align_corners=False) to the actual grid of each input.

    Shapes: (B, C_in, H, W) -> tokens (B, h*w, C) and (h, w) = (ceil(H/P), ceil(W/P)).
    """

    def __init__(self, in_channels: int, embed_dims: int, depth: int, num_heads: int,
                 mlp_ratio: float, sr_ratio: int, patch_size: int, pos_grid: Tuple[int, int],
                 drop_path_rates: Sequence[float], with_cp: bool = False) -> None:
        super().__init__()
        self.pos_grid = tuple(pos_grid)
        self.with_cp = with_cp
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid[0] * pos_grid[1], embed_dims))
        self.blocks = nn.ModuleList(
            PVTBlock(embed_dims, num_heads, mlp_ratio, sr_ratio, drop_path=dpr)
            for dpr in drop_path_rates)

    def pos_embed_for(self, hw: Tuple[int, int]) -> Tensor:
        """The position table resized to grid `hw`, (1, h*w, C).

        Resized on every call, never cached: a cache keyed on the parameter goes stale when its
        values change in place through ``.data`` (as mmengine's EMA hook updates the averaged
        model), and it buys nothing measurable: the four resizes of PVT-S at 800x1344 take
        5.7 ms of a 4.7 s CPU forward (0.1%).
        """
        return resize_pos_embed(self.pos_embed, self.pos_grid, hw)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x, hw = self.patch_embed(x)
        x = x + self.pos_embed_for(hw)
        return run_blocks(self.blocks, x, hw, self.with_cp), hw


@MODELS.register_module()
class PVT(PyramidVisionBackbone):
    """Pyramid Vision Transformer backbone (PVT v1) for mmdet and mmseg.

    Args:
        arch: 'tiny' | 'small' | 'medium' | 'large' (Table 1), or a dict with per-stage
            embed_dims, depths, num_heads, mlp_ratios, sr_ratios, patch_sizes. Default 'small'.
        pretrain_img_size: image size the position tables were learnt at (int or (H, W)); 224
            for the official checkpoints.
        in_channels: input channels. Default 3.
        out_indices: which stage outputs F1..F4 (0-based) to return, in the order given; an int
            selects one. Default all four.
        drop_path_rate: stochastic depth of the last block, in [0, 1); it rises linearly from 0.
            Default 0.1.
        frozen_stages: stages 1..k (patch embedding, position table, blocks) get
            requires_grad=False and stay in eval mode; -1 (default) or 0 freezes nothing.
        with_cp: activation checkpointing per block (saves memory, same outputs and gradients).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL[, prefix=...])`` (or a list
            holding one) loads official (whai362/PVT), mmdet 3.x or mmpvt weights, also wrapped in
            a detector/segmentor checkpoint; see :mod:`mmpvt.models.checkpoints`. None: random
            initialisation.

    Shapes: (B, in_channels, H, W) -> tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)) for the selected
    stages, strides s = 4, 8, 16, 32 and C = 64, 128, 320, 512 for the paper's variants.
    """

    family = 'PVT'

    def __init__(self, arch: Union[str, dict] = 'small',
                 pretrain_img_size: Union[int, Tuple[int, int]] = 224, in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), drop_path_rate: float = 0.1,
                 frozen_stages: int = -1, with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        parsed = parse_arch(arch, 'PVT', PVT_ARCHS, PVT_ARCH_KEYS)
        depths = parsed['depths']
        super().__init__(len(depths), in_channels, out_indices, drop_path_rate, frozen_stages,
                         with_cp, init_cfg)
        self.arch = parsed
        self.arch_name = arch if isinstance(arch, str) else 'custom'
        if isinstance(pretrain_img_size, int):
            pretrain_img_size = (pretrain_img_size, pretrain_img_size)
        stride = 1
        for p in self.arch['patch_sizes']:
            stride *= p
        if (not isinstance(pretrain_img_size, (tuple, list)) or len(pretrain_img_size) != 2
                or not all(isinstance(s, int) and s >= stride for s in pretrain_img_size)):
            raise ValueError(f'PVT: pretrain_img_size must be an int or (H, W) of at least the '
                             f'total stride {stride}, got {pretrain_img_size!r}')
        self.embed_dims = self.arch['embed_dims']
        stride, channels = 1, in_channels
        for i, rates in enumerate(drop_path_schedule(drop_path_rate, depths)):
            stride *= self.arch['patch_sizes'][i]
            self.stages.append(PVTStage(
                in_channels=channels, embed_dims=self.embed_dims[i], depth=depths[i],
                num_heads=self.arch['num_heads'][i], mlp_ratio=self.arch['mlp_ratios'][i],
                sr_ratio=self.arch['sr_ratios'][i], patch_size=self.arch['patch_sizes'][i],
                pos_grid=(pretrain_img_size[0] // stride, pretrain_img_size[1] // stride),
                drop_path_rates=rates, with_cp=with_cp))
            channels = self.embed_dims[i]
        self._freeze_stages()

    def _random_init(self) -> None:
        """The authors' v1 initialisation: trunc-normal(0.02) linears and position tables, unit
        LayerNorms, and convolutions (patch embedding, K/V reduction) left at PyTorch's default
        (the authors' v1 initialises only linears and norms; the He-normal convolutions of the
        shared init are v2's)."""
        super()._random_init()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()
        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=0.02)
