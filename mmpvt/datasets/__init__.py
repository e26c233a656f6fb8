"""Data transforms of the authors' recipes (registered as ``mmpvt.<Name>`` by mmpvt.registry)."""
from .transforms import AlignResize

__all__ = ['AlignResize']
