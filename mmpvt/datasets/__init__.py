"""Data transforms of the authors' recipes (each registers itself as ``mmpvt.<Name>``)."""
from .transforms import AlignResize

__all__ = ['AlignResize']
