"""The backbones, side by side: PVT v1 (:mod:`.pvt`) and PVTv2 (:mod:`.pvt_v2`)."""
from .base import PyramidVisionBackbone
from .pvt import PVT
from .pvt_v2 import PVTv2

__all__ = ['PyramidVisionBackbone', 'PVT', 'PVTv2']
