"""Decode heads mmpvt adds to mmseg's: Trans2Seg (the PVT paper's Table 7). Not imported by
:mod:`mmpvt.models`: the registry imports this package on the first look-up in the ``mmpvt``
scope (it imports mmseg's models)."""
from .trans2seg import ClassQueryAttention, Trans2SegDecoderLayer, Trans2SegHead

__all__ = ['ClassQueryAttention', 'Trans2SegDecoderLayer', 'Trans2SegHead']
