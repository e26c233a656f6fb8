"""Runner hooks (:mod:`.hooks`) and model wrappers (:mod:`.model_wrappers`), each registered as
``mmpvt.<Name>``."""
from .hooks import CheckpointFitHook, ResumeAgreementHook
from .model_wrappers import CPUDistributedDataParallel

__all__ = ['CheckpointFitHook', 'CPUDistributedDataParallel', 'ResumeAgreementHook']
