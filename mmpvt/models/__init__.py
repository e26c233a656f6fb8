from .convert import (CheckpointMismatchError, convert_checkpoint_file, convert_to_mmpvt,
                      detect_layout, load_pvt_checkpoint)
from .pvt import (ARCH_SETTINGS, PVT, PatchEmbed, PVTBlock, PVTStage, SpatialReductionAttention,
                  resize_pos_embed)

__all__ = [
    'ARCH_SETTINGS', 'PVT', 'PatchEmbed', 'PVTBlock', 'PVTStage', 'SpatialReductionAttention',
    'resize_pos_embed', 'CheckpointMismatchError', 'convert_checkpoint_file', 'convert_to_mmpvt',
    'detect_layout', 'load_pvt_checkpoint'
]
