"""mmpvt: the Pyramid Vision Transformer (PVT v1) and PVTv2 as an OpenMMLab 2.x plugin.

:mod:`mmpvt.families` and :mod:`mmpvt.ops` need only torch: ``from mmpvt.families.pvt_v2 import
PVTv2`` works in a plain PyTorch project. With mmengine and mmcv installed, importing mmpvt
also loads the OpenMMLab side. That registers ``PVT``, ``PVTv2``, ``ViTPyramid``, ``DETR``,
``Trans2SegHead``, ``AlignResize``, ``CheckpointFitHook``, ``ResumeAgreementHook`` and
``CPUDistributedDataParallel`` in the ``mmpvt`` scope (``type='mmpvt.PVT'`` etc. from mmdet's,
mmseg's, mmpretrain's or mmengine's registries), the atomic checkpoint file backend, mmengine
checkpoint loaders that never run code from a checkpoint (see :mod:`mmpvt.safe_load`), and a
handler that sends the ``'mmpvt'`` logger's lines to mmengine's current logger. Nothing of
mmengine, mmcv or torch is replaced.
"""
from importlib.util import find_spec

from . import families, ops
from .version import __version__

__all__ = ['__version__', 'families', 'ops']

# The OpenMMLab side needs mmengine and mmcv; without them mmpvt is a plain PyTorch package.
if find_spec('mmengine') is not None and find_spec('mmcv') is not None:
    from . import datasets, engine, fileio, models, registry
    from .log import forward_to_mmengine
    from .safe_load import allow_mmengine_checkpoints

    forward_to_mmengine()
    allow_mmengine_checkpoints()
    __all__ += ['datasets', 'engine', 'fileio', 'models', 'registry']
