"""mmpvt: the Pyramid Vision Transformer (PVT v1) and PVTv2 as an OpenMMLab 2.x plugin.

Importing it registers ``PVT``, ``PVTv2``, ``ViTPyramid``, ``DETR``, ``Trans2SegHead``,
``AlignResize`` and ``CheckpointFitHook`` in the ``mmpvt`` scope (``type='mmpvt.PVT'`` etc. from
mmdet's, mmseg's, mmpretrain's or mmengine's registries), the atomic checkpoint file backend, and
mmengine checkpoint loaders that never run code from a checkpoint (see :mod:`mmpvt.safe_load`).
Nothing of mmengine, mmcv or torch is replaced.
"""
from . import datasets, engine, fileio, models, registry
from .safe_load import allow_mmengine_checkpoints
from .version import __version__

allow_mmengine_checkpoints()

__all__ = ['__version__', 'datasets', 'engine', 'fileio', 'models', 'registry']
