"""mmpvt: the Pyramid Vision Transformer (PVT v1) and PVTv2 as an OpenMMLab 2.x plugin.

Importing it registers ``PVT``, ``PVTv2``, ``DETR``, ``Trans2SegHead``, ``AlignResize`` and
``CheckpointFitHook`` in the ``mmpvt`` scope (``type='mmpvt.PVT'`` etc. from mmdet's, mmseg's or
mmengine's registries), the atomic checkpoint file backend, and lets torch's safe loading read
mmengine Runner checkpoints, local or downloaded (see :mod:`mmpvt.safe_load`).
"""
from . import datasets, engine, fileio, models, registry
from .safe_load import allow_mmengine_checkpoints
from .version import __version__

allow_mmengine_checkpoints()

__all__ = ['__version__', 'datasets', 'engine', 'fileio', 'models', 'registry']
