"""Runner hooks (:mod:`.hooks`), each registered as ``mmpvt.<Name>``."""
from .hooks import CheckpointFitHook

__all__ = ['CheckpointFitHook']
