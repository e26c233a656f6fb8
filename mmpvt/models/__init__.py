"""Models: the backbones (:mod:`.backbones`), their shared layers (:mod:`.layers`) and checkpoint
layouts (:mod:`.checkpoints`)."""
from .backbones import PVT, PVTv2
from .backbones.pvt import ARCH_SETTINGS as PVT_ARCHS
from .backbones.pvt import resize_pos_embed
from .backbones.pvt_v2 import ARCH_SETTINGS as PVTV2_ARCHS
from .checkpoints import (CheckpointMismatchError, CheckpointReadError, convert_checkpoint_file,
                          convert_to_mmpvt, identify, load_backbone_checkpoint)
from .layers import (ConvFeedForward, FeedForward, OverlapPatchEmbed, PatchEmbed, PVTBlock,
                     SpatialReductionAttention)

__all__ = [
    'PVT', 'PVTv2', 'PVT_ARCHS', 'PVTV2_ARCHS', 'resize_pos_embed', 'CheckpointMismatchError',
    'CheckpointReadError', 'convert_checkpoint_file', 'convert_to_mmpvt', 'identify',
    'load_backbone_checkpoint', 'ConvFeedForward', 'FeedForward', 'OverlapPatchEmbed',
    'PatchEmbed', 'PVTBlock', 'SpatialReductionAttention'
]
