"""A columnar ViT as a four-level pyramid: the paper's Table 8 baseline (ViT-Small/32 and /4 +
RetinaNet).

ViT is single-scale: every layer outputs a map at the patch stride. The paper adapts it to
RetinaNet by taking the features of layers 2, 4, 6 and 8 and interpolating them to the scales an
FPN expects (its footnote 3); the parameter counts of Table 8 (60.8M at patch 32, 60.9M at patch
4) are those of the ViT plus the stock FPN and RetinaNet head, so the resizing has no parameters.
:class:`ViTPyramid` does exactly that around any ViT that returns (B, C, h, w) maps, e.g.
mmpretrain's ``VisionTransformer`` with ``out_type='featmap'``; it holds no parameter of its own.
"""
import math
from typing import Optional, Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from ..registry import MODELS


@MODELS.register_module()
class ViTPyramid(BaseModule):
    """The maps of a plain ViT resized to a pyramid of strides, without parameters.

    Args:
        vit: config of the ViT, built from the registry (``type='mmpretrain.VisionTransformer'``
            with ``out_type='featmap'`` and one ``out_indices`` entry per stride). Its own
            ``init_cfg`` loads its weights.
        strides: output stride of each returned map, in the ViT's output order. Default
            (4, 8, 16, 32), the strides of ResNet's and PVT's C2-C5.
        mode: ``F.interpolate`` mode (both up and down). Default 'bilinear' (align_corners False).
        init_cfg: mmengine's, for this wrapper (it has no parameters: the ViT's weights go in
            ``vit.init_cfg``). Default None.

    Shapes: (B, 3, H, W) -> tuple of (B, C, ceil(H / s), ceil(W / s)) for s in `strides`, C the
    ViT's width (768 for ViT-Small).
    """

    def __init__(self, vit: dict, strides: Sequence[int] = (4, 8, 16, 32), mode: str = 'bilinear',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if not strides or not all(isinstance(s, int) and s > 0 for s in strides):
            raise ValueError(f'ViTPyramid: strides must be positive integers, got {strides!r}')
        self.vit = MODELS.build(vit)
        self.strides = tuple(strides)
        self.mode = mode

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        maps = self.vit(x)
        if len(maps) != len(self.strides):
            raise ValueError(f'ViTPyramid: the ViT returned {len(maps)} maps for '
                             f'{len(self.strides)} strides {self.strides}; give it one '
                             'out_indices entry per stride')
        h, w = x.shape[-2:]
        outs = []
        for feat, stride in zip(maps, self.strides):
            if feat.dim() != 4:
                raise ValueError(f'ViTPyramid: expected (B, C, h, w) maps from the ViT '
                                 f"(out_type='featmap'), got shape {tuple(feat.shape)}")
            size = (math.ceil(h / stride), math.ceil(w / stride))
            if tuple(feat.shape[-2:]) != size:
                feat = F.interpolate(
                    feat, size=size, mode=self.mode,
                    **({} if self.mode in ('nearest', 'area') else dict(align_corners=False)))
            outs.append(feat)
        return tuple(outs)
