"""mmpvt: the Pyramid Vision Transformer (PVT v1) and PVTv2 as an OpenMMLab 2.x plugin.

Importing it registers ``PVT``, ``PVTv2`` and ``AlignResize`` (``type='mmpvt.PVT'`` etc.) and
lets torch's safe loading read mmengine Runner checkpoints (see :mod:`mmpvt.safe_load`).
"""
from .safe_load import allow_mmengine_checkpoints
from .version import __version__

allow_mmengine_checkpoints()

from . import registry  # noqa: E402  (registers PVT, PVTv2, AlignResize)

__all__ = ['__version__', 'registry']
