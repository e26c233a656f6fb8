"""The backbones, side by side: PVT v1 (:mod:`.pvt_v1`) and PVTv2 (:mod:`.pvt_v2`), on the base
they share (:mod:`.base`); and the paper's ViT baseline as a pyramid (:mod:`.vit_pyramid`)."""
from ..archs import family_of
from .base import PyramidVisionBackbone
from .pvt_v1 import PVT
from .pvt_v2 import PVTv2
from .vit_pyramid import ViTPyramid

_CLASSES = {'PVT': PVT, 'PVTv2': PVTv2}


def build_backbone(arch: str, **kwargs) -> PyramidVisionBackbone:
    """PVT (tiny/small/medium/large) or PVTv2 (b0..b5, b2_li) by variant name; `kwargs` go to
    the constructor (e.g. ``drop_path_rate=0.0``)."""
    return _CLASSES[family_of(arch)](arch, **kwargs)


__all__ = ['PyramidVisionBackbone', 'PVT', 'PVTv2', 'ViTPyramid', 'build_backbone']
