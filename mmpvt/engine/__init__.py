"""Runner hooks (:mod:`.hooks`), each registered as ``mmpvt.<Name>``."""
from .hooks import CheckpointFitHook, ResumeAgreementHook

__all__ = ['CheckpointFitHook', 'ResumeAgreementHook']
