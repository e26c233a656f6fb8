"""Model wrappers of mmpvt's tools."""
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from torch import nn

from ..registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's MMDistributedDataParallel for processes without CUDA (gloo), wrapped as
    mmengine wraps a model on GPUs (``broadcast_buffers=False``, the config's
    ``find_unused_parameters``, False by default), with two differences a CPU needs: no
    ``device_ids``, and SyncBN layers become BatchNorm, with one log line. torch's SyncBatchNorm
    has no CPU kernel (it stops at the first forward in training), so each process normalises
    with its own batch statistics, as BatchNorm does on one GPU.

    ``tools/train.py`` uses it, through ``model_wrapper_cfg``, when a distributed launch finds
    no CUDA; on GPUs the Runner's own wrapper runs.
    """

    def __init__(self, module: nn.Module, find_unused_parameters: bool = False, **kwargs) -> None:
        kwargs.pop('device_ids', None)  # (the Runner passes its LOCAL_RANK; CPU modules take none)
        synced = sum(isinstance(m, nn.SyncBatchNorm) for m in module.modules())
        if synced:
            module = revert_sync_batchnorm(module)
            print_log(
                f'no CUDA: {synced} SyncBN layers run as BatchNorm, each process with its '
                'own batch statistics (torch has no CPU SyncBN)', logger='current')
        kwargs.setdefault('broadcast_buffers', False)  # mmengine's default; a config may set it
        super().__init__(module=module, device_ids=None,
                         find_unused_parameters=find_unused_parameters, **kwargs)
