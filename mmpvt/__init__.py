"""mmpvt: the Pyramid Vision Transformer (PVT v1) as an OpenMMLab 2.x plugin."""
from .version import __version__

__all__ = ['__version__']
