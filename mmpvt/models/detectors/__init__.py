"""Detectors mmpvt adds to mmdet's (imported lazily by :mod:`mmpvt.registry`: they need mmdet)."""
from .detr import DETR

__all__ = ['DETR']
