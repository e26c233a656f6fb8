"""Pyramid Vision Transformer (PVT v1), Wang et al., ICCV 2021.

The file reads bottom-up, as the paper builds the network (Sec. 3; the variants of Table 1 are
:data:`mmpvt.models.archs.PVT_ARCHS`):

    PVTStage -> PVT

Patch embedding, spatial-reduction attention and the encoder layer live in
:mod:`mmpvt.models.layers`, shared with PVTv2. What is v1's own: non-overlapping patch embedding
and an absolute position table per stage (no stage norm, no convolution in the feed-forward).

Choices that differ from a literal transcription of the authors' code, and why:

* Sizes that a patch size does not divide are zero-padded at the right/bottom instead of floored,
  so no border pixel is dropped: stage outputs are ceil(H/4), ceil(H/8), ceil(H/16), ceil(H/32).
  The K/V reduction pads its grid the same way. For sizes that 32 divides (always the case after
  mmdet/mmseg pad inputs to 32) nothing changes.
* Attention runs through ``F.scaled_dot_product_attention``; numerically it is eq. (4).
* LayerNorm eps follows what the official checkpoints were trained with: 1e-6 in the blocks,
  1e-5 in patch embedding and in the K/V reduction. (mmdet's port uses 1e-6 everywhere, which
  moves its features about 2e-4 away from the official model's.)

As an ImageNet classifier (``out_type='cls_token'``, the authors' classification model) the last
stage also carries the class token: it is prepended to the stage's tokens as token 0, its
position is row 0 of that stage's table (1 + 7 x 7 rows, row 0 added as is, the rest resized to
the grid), it takes part in the stage's attention, and after a final LayerNorm it is the
network's output. Dense prediction never sees it.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

from ...registry import MODELS
from ..archs import PVT_ARCH_KEYS, PVT_ARCHS
from ..layers import (BLOCK_NORM_EPS, PatchEmbed, PVTBlock, resize_pos_embed, run_blocks,
                      tokens_to_map)
from .base import PyramidVisionBackbone, drop_path_schedule, parse_arch

OUT_TYPES = ('featmap', 'cls_token')


class PVTStage(nn.Module):
    """One pyramid stage: patch embedding, absolute position embedding, L_i encoder layers.

    The position table lives on the pre-training grid `pos_grid` (224 px: 56², 28², 14², 7²) and is
    resized (bilinearly, align_corners=False) to the actual grid of each input. With
    `num_extra_tokens` = 1 (the classifier's last stage) the table has one more row, first: the
    class token's position, added to it as is, never resized.

    Shapes: (B, C_in, H, W) [+ class token (1, 1, C)] -> tokens (B, [1 +] h*w, C) and
    (h, w) = (ceil(H/P), ceil(W/P)).
    """

    def __init__(self, in_channels: int, embed_dims: int, depth: int, num_heads: int,
                 mlp_ratio: float, sr_ratio: int, patch_size: int, pos_grid: Tuple[int, int],
                 drop_path_rates: Sequence[float], with_cp: bool = False,
                 num_extra_tokens: int = 0) -> None:
        super().__init__()
        self.pos_grid = tuple(pos_grid)
        self.num_extra_tokens = num_extra_tokens
        self.with_cp = with_cp
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_extra_tokens + pos_grid[0] * pos_grid[1], embed_dims))
        self.blocks = nn.ModuleList(
            PVTBlock(embed_dims, num_heads, mlp_ratio, sr_ratio, drop_path=dpr)
            for dpr in drop_path_rates)

    def pos_embed_for(self, hw: Tuple[int, int]) -> Tensor:
        """The position table resized to grid `hw`, (1, [1 +] h*w, C) (the extra row unchanged).

        Resized on every call, never cached: a cache keyed on the parameter goes stale when its
        values change in place through ``.data`` (as mmengine's EMA hook updates the averaged
        model), and it buys nothing measurable: the four resizes of PVT-S at 800x1344 take
        5.7 ms of a 4.7 s CPU forward (0.1%).
        """
        n = self.num_extra_tokens
        if not n:
            return resize_pos_embed(self.pos_embed, self.pos_grid, hw)
        grid = resize_pos_embed(self.pos_embed[:, n:], self.pos_grid, hw)
        return torch.cat([self.pos_embed[:, :n], grid], dim=1)

    def forward(self, x: Tensor, cls_token: Optional[Tensor] = None
                ) -> Tuple[Tensor, Tuple[int, int]]:
        x, hw = self.patch_embed(x)
        if cls_token is not None:
            x = torch.cat([cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed_for(hw)
        return run_blocks(self.blocks, x, hw, self.with_cp), hw


@MODELS.register_module()
class PVT(PyramidVisionBackbone):
    """Pyramid Vision Transformer backbone (PVT v1) for mmdet, mmseg and mmpretrain.

    Args:
        arch: 'tiny' | 'small' | 'medium' | 'large' (Table 1), or a dict with per-stage
            embed_dims, depths, num_heads, mlp_ratios, sr_ratios, patch_sizes. Default 'small'.
        pretrain_img_size: image size the position tables were learnt at (int or (H, W)); 224
            for the official checkpoints.
        in_channels: input channels. Default 3.
        out_indices: which stage outputs F1..F4 (0-based) to return, in the order given; an int
            selects one. Default all four ('featmap'), the last stage ('cls_token'). Stages after
            the last one returned are not run and not trained (requires_grad=False, eval mode).
        drop_path_rate: stochastic depth of the last block, in [0, 1); it rises linearly from 0.
            Default 0.1.
        frozen_stages: stages 1..k (patch embedding, position table, blocks) get
            requires_grad=False and stay in eval mode; -1 (default) or 0 freezes nothing. With
            every stage frozen the class token and the final norm are frozen too.
        with_cp: activation checkpointing per block (saves memory, same outputs and gradients).
        out_type: 'featmap' (default): the stage maps, for dense prediction. 'cls_token': the
            authors' ImageNet classifier body: a class token (``cls_token``, (1, 1, C4)) joins
            the last stage, whose position table gets one more row for it, and the output is that
            token after a final LayerNorm (``norm``, eps 1e-6); out_indices must then be the
            last stage only. The last stage must have sr_ratio 1 (every paper variant has).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL[, prefix=...])`` (or a list
            holding one) loads official (whai362/PVT), mmdet 3.x, transformers or mmpvt weights,
            also wrapped in a detector/segmentor/classifier checkpoint; see
            :mod:`mmpvt.models.checkpoints`. None: random initialisation.

    Shapes: (B, in_channels, H, W) -> 'featmap': tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)) for
    the selected stages, strides s = 4, 8, 16, 32 and C = 64, 128, 320, 512 for the paper's
    variants; 'cls_token': a tuple holding the (B, C4) class-token feature.
    """

    family = 'PVT'

    def __init__(self, arch: Union[str, dict] = 'small',
                 pretrain_img_size: Union[int, Tuple[int, int]] = 224, in_channels: int = 3,
                 out_indices: Optional[Sequence[int]] = None, drop_path_rate: float = 0.1,
                 frozen_stages: int = -1, with_cp: bool = False, out_type: str = 'featmap',
                 init_cfg: Optional[dict] = None) -> None:
        parsed = parse_arch(arch, 'PVT', PVT_ARCHS, PVT_ARCH_KEYS)
        depths = parsed['depths']
        last = len(depths) - 1
        if out_type not in OUT_TYPES:
            raise ValueError(f'PVT: out_type must be one of {OUT_TYPES}, got {out_type!r}')
        with_cls_token = out_type == 'cls_token'
        if out_indices is None:
            out_indices = (last, ) if with_cls_token else (0, 1, 2, 3)
        if with_cls_token:
            as_tuple = (out_indices, ) if isinstance(out_indices, int) else out_indices
            if not isinstance(as_tuple, (list, tuple)) or tuple(as_tuple) != (last, ):
                raise ValueError(f"PVT: out_type='cls_token' outputs the class token of the last "
                                 f'stage only: out_indices must be ({last},), got {out_indices!r}')
            if parsed['sr_ratios'][last] != 1:
                raise ValueError(f"PVT: out_type='cls_token' needs sr_ratio 1 in the last stage "
                                 f"(the class token cannot join a spatial reduction), got "
                                 f"sr_ratios {list(parsed['sr_ratios'])}")
        super().__init__(len(depths), in_channels, out_indices, drop_path_rate, frozen_stages,
                         with_cp, init_cfg)
        self.out_type = out_type
        self.with_cls_token = with_cls_token
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
                drop_path_rates=rates, with_cp=with_cp,
                num_extra_tokens=int(self.with_cls_token and i == last)))
            channels = self.embed_dims[i]
        if self.with_cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, channels))
            self.norm = nn.LayerNorm(channels, eps=BLOCK_NORM_EPS)
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
        if self.with_cls_token:
            trunc_normal_(self.cls_token, std=0.02)

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.with_cls_token and self.frozen_stages == len(self.stages):
            self.norm.eval()
            for p in (self.cls_token, *self.norm.parameters()):
                p.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """'featmap': see :meth:`PyramidVisionBackbone.forward`. 'cls_token': (B, C_in, H, W) ->
        ((B, C4) class token after the final norm, )."""
        if not self.with_cls_token:
            return super().forward(x)
        self._check_input(x)
        for stage in self.stages[:-1]:
            tokens, hw = stage(x)
            x = tokens_to_map(tokens, hw)
        tokens, _ = self.stages[-1](x, cls_token=self.cls_token)
        # LayerNorm acts on each token alone: normalising only the class token gives the
        # official output exactly, without normalising the h*w tokens nobody reads.
        return (self.norm(tokens[:, 0]), )
