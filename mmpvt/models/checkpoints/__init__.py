"""Checkpoint layouts of PVT v1 (:mod:`.pvt_v1`) and PVTv2 (:mod:`.pvt_v2`), told apart and
converted by :mod:`.convert`, loaded strictly by :mod:`.loading`; mmdet 2.x DETR keys in
:mod:`.detr`; whole detector/segmentor files fitted to their model by :mod:`.whole_model`.
Imports run one way: base -> family layouts -> convert -> loading; the backbones
import this package, never the reverse."""
from .base import CheckpointMismatchError, CheckpointReadError, StateDict, is_square
from .convert import (Conversion, backbone_part, convert_classifier, convert_to_mmpvt,
                      extract_state_dict, identify, infer_arch, is_backbone_key, unwrap)
from .loading import (adopt_classifier_state_dict, adopt_state_dict, check_family, check_state_dict,
                      convert_for, load_backbone_checkpoint, load_checkpoint_file, read_checkpoint)
from .whole_model import fit_state_dict

__all__ = [
    'CheckpointMismatchError', 'CheckpointReadError', 'StateDict', 'is_square', 'Conversion',
    'backbone_part', 'convert_classifier', 'convert_to_mmpvt', 'extract_state_dict', 'identify',
    'infer_arch', 'is_backbone_key', 'unwrap', 'adopt_classifier_state_dict', 'adopt_state_dict',
    'check_family', 'check_state_dict', 'convert_for', 'load_backbone_checkpoint',
    'load_checkpoint_file', 'read_checkpoint', 'fit_state_dict'
]
