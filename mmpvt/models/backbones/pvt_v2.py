"""PVTv2 (Wang et al., "PVT v2: Improved Baselines with Pyramid Vision Transformer", CVMJ 2022).

The file reads bottom-up (the variants are :data:`mmpvt.models.archs.PVTV2_ARCHS`):

    PVTv2Stage -> PVTv2

What v2 changes against v1 (:mod:`.pvt_v1`), each visible in this file or in the layer it picks:

==========================  ====================================  =================================
                            PVT v1                                PVTv2
==========================  ====================================  =================================
patch embedding             P x P, stride P (``PatchEmbed``)      overlapping 7/4/3 then 3/2/1
                                                                  (``OverlapPatchEmbed``)
position information        learnt table per stage, resized       none; the FFN's 3x3 depth-wise
                                                                  conv (``ConvFeedForward``)
attention                   SRA, R x R reduction                  same; b2-li: linear SRA (7 x 7
                                                                  average pool, 1x1 conv, GELU)
after each stage            nothing                               LayerNorm (``stages.i.norm``)
==========================  ====================================  =================================

LayerNorm eps is the official one at every location: 1e-6 in the layers
and the per-stage norms, 1e-5 (PyTorch's default, as trained) in patch embedding and in the K/V
reduction. mmdet 3.3 and transformers use 1e-6 everywhere, which moves features off the official
model's.

Any input size: the patch embeddings give ceil(H/4), ceil(H/8), ... by construction. A reduction
ratio R that does not divide a stage grid (the official R x R conv would silently drop the last
rows/columns) zero-pads the grid to a multiple of R, as PVT v1 does here: no pixel is lost, and
on grids that R divides (every grid once inputs are padded to 32, which mmdet and mmseg do) the
result is the official one exactly. Linear SRA is defined for every size and is official everywhere.
"""
from typing import Optional, Sequence, Tuple, Union

from torch import Tensor, nn

from ...registry import MODELS
from ..archs import PVTV2_ARCH_FLAGS, PVTV2_ARCH_KEYS, PVTV2_ARCHS
from ..layers import BLOCK_NORM_EPS, OverlapPatchEmbed, PVTBlock, run_blocks
from .base import PyramidVisionBackbone, drop_path_schedule, parse_arch

# Overlapping patch embedding per stage: (kernel, stride); padding is kernel // 2.
PATCH_EMBED = ((7, 4), (3, 2), (3, 2), (3, 2))


class PVTv2Stage(nn.Module):
    """One PVTv2 stage: overlapping patch embedding, L_i encoder layers, LayerNorm (eps 1e-6).

    Shapes: (B, C_in, H, W) -> tokens (B, h*w, C) and (h, w) = (ceil(H/s), ceil(W/s)).
    """

    def __init__(self, in_channels: int, embed_dims: int, num_heads: int, mlp_ratio: float,
                 sr_ratio: int, patch_size: int, stride: int, drop_path_rates: Sequence[float],
                 linear: bool = False, with_cp: bool = False) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.patch_embed = OverlapPatchEmbed(in_channels, embed_dims, patch_size, stride)
        self.blocks = nn.ModuleList(
            PVTBlock(embed_dims, num_heads, mlp_ratio, sr_ratio, drop_path=dpr, conv_ffn=True,
                     linear=linear)
            for dpr in drop_path_rates)
        self.norm = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x, hw = self.patch_embed(x)
        return self.norm(run_blocks(self.blocks, x, hw, self.with_cp)), hw


@MODELS.register_module()
class PVTv2(PyramidVisionBackbone):
    """PVTv2 backbone (b0-b5, b2-li) for mmdet and mmseg.

    Args:
        arch: 'b0' | 'b1' | 'b2' | 'b2_li' | 'b3' | 'b4' | 'b5', or a dict with per-stage
            embed_dims, depths, num_heads, mlp_ratios, sr_ratios and optionally ``linear``
            (linear SRA, default False). Default 'b2'.
        in_channels: input channels. Default 3.
        out_indices: which stage outputs (0-based) to return, in the order given; an int selects
            one. Default all four. Stages after the last one returned are not run and not
            trained (requires_grad=False, eval mode), as if frozen.
        drop_path_rate: stochastic depth of the last layer, in [0, 1), rising linearly from 0.
            Default 0.1 (the authors' detection and segmentation backbones).
        frozen_stages: stages 1..k (patch embedding, layers, stage norm) get requires_grad=False
            and stay in eval mode; -1 (default) or 0 freezes nothing.
        with_cp: activation checkpointing per layer.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL[, prefix=...])`` (or a list
            holding one) loads official (whai362/PVT v2), mmdet 3.x, timm, transformers or mmpvt
            weights, also inside a detector/segmentor checkpoint; see
            :mod:`mmpvt.models.checkpoints`. None: random initialisation.

    Shapes: (B, in_channels, H, W) -> tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)), s = 4, 8, 16,
    32; C = 32, 64, 160, 256 (b0) or 64, 128, 320, 512 (b1-b5).
    """

    family = 'PVTv2'

    def __init__(self, arch: Union[str, dict] = 'b2', in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), drop_path_rate: float = 0.1,
                 frozen_stages: int = -1, with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        parsed = parse_arch(arch, 'PVTv2', PVTV2_ARCHS, PVTV2_ARCH_KEYS, PVTV2_ARCH_FLAGS)
        depths = parsed['depths']
        if len(depths) > len(PATCH_EMBED):
            raise ValueError(f'PVTv2 arch: at most {len(PATCH_EMBED)} stages, got {len(depths)}')
        super().__init__(len(depths), in_channels, out_indices, drop_path_rate, frozen_stages,
                         with_cp, init_cfg)
        self.arch = parsed
        self.arch_name = arch if isinstance(arch, str) else 'custom'
        self.embed_dims = parsed['embed_dims']
        channels = in_channels
        for i, rates in enumerate(drop_path_schedule(drop_path_rate, depths)):
            self.stages.append(PVTv2Stage(
                in_channels=channels, embed_dims=self.embed_dims[i],
                num_heads=parsed['num_heads'][i], mlp_ratio=parsed['mlp_ratios'][i],
                sr_ratio=parsed['sr_ratios'][i], patch_size=PATCH_EMBED[i][0],
                stride=PATCH_EMBED[i][1], drop_path_rates=rates, linear=parsed['linear'],
                with_cp=with_cp))
            channels = self.embed_dims[i]
        self._freeze_stages()
