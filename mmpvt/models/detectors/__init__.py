"""Detectors mmpvt adds to mmdet's. Not imported by :mod:`mmpvt.models`: the registry imports
this package on the first look-up in the ``mmpvt`` scope (it imports mmdet's models)."""
from .detr import DETR

__all__ = ['DETR']
