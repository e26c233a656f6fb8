"""Models: the variants (:mod:`.archs`), the layers both families share (:mod:`.layers`), the
checkpoint layouts and strict loading (:mod:`.checkpoints`) and the backbones
(:mod:`.backbones`), in that import order; mmdet 2.x-compatible DETR in :mod:`.detectors` and
the Trans2Seg decode head in :mod:`.heads` (both imported on demand by the registry)."""
from .archs import PVT_ARCHS, PVTV2_ARCHS, family_of
from .backbones import PVT, PVTv2, ViTPyramid, build_backbone
from .checkpoints import (CheckpointMismatchError, CheckpointReadError, convert_to_mmpvt, identify,
                          load_backbone_checkpoint)
from .layers import (ConvFeedForward, FeedForward, OverlapPatchEmbed, PatchEmbed, PVTBlock,
                     SpatialReductionAttention, resize_pos_embed)

__all__ = [
    'PVT', 'PVTv2', 'ViTPyramid', 'PVT_ARCHS', 'PVTV2_ARCHS', 'family_of', 'build_backbone',
    'resize_pos_embed',
    'CheckpointMismatchError', 'CheckpointReadError', 'convert_to_mmpvt', 'identify',
    'load_backbone_checkpoint', 'ConvFeedForward', 'FeedForward', 'OverlapPatchEmbed',
    'PatchEmbed', 'PVTBlock', 'SpatialReductionAttention'
]
