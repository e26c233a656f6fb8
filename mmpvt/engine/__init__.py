"""Runner hooks (:mod:`.hooks`) and model wrappers (:mod:`.model_wrappers`), each registered as
``mmpvt.<Name>``."""
from .hooks import CheckpointFitHook, DataLostError, DatasetReportHook, ResumeAgreementHook
from .model_wrappers import CPUDistributedDataParallel

__all__ = [
    'CheckpointFitHook', 'CPUDistributedDataParallel', 'DataLostError', 'DatasetReportHook',
    'ResumeAgreementHook'
]
