"""Checkpoint layouts of PVT v1 (:mod:`.pvt_v1`) and PVTv2 (:mod:`.pvt_v2`) and the loading,
conversion and checking they share (:mod:`.common`)."""
from .common import (CheckpointMismatchError, adopt_state_dict, CheckpointReadError, check_state_dict,
                     convert_checkpoint_file, convert_to_mmpvt, extract_state_dict, identify,
                     infer_arch, load_backbone_checkpoint, read_checkpoint)

__all__ = [
    'CheckpointMismatchError', 'CheckpointReadError', 'adopt_state_dict', 'check_state_dict',
    'convert_checkpoint_file', 'convert_to_mmpvt', 'extract_state_dict', 'identify', 'infer_arch',
    'load_backbone_checkpoint', 'read_checkpoint'
]
