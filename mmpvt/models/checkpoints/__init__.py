"""Checkpoints on the OpenMMLab side: strict loading of a backbone (:mod:`.loading`: files and
URLs through mmengine, every loader's state dict through the backbones' pre-hook), whole
detector/segmentor files fitted to their model (:mod:`.whole_model`) and mmdet 2.x DETR keys
(:mod:`.detr`). Every path converts through the one entry of the plain families,
:func:`mmpvt.families.convert_to_mmpvt` (via :func:`.loading.convert_for`)."""
from .errors import CheckpointMismatchError, CheckpointReadError
from .loading import (adopt_classifier_state_dict, adopt_state_dict, check_family, check_state_dict,
                      convert_for, load_backbone_checkpoint, load_checkpoint_file, read_checkpoint)
from .whole_model import fit_state_dict

__all__ = [
    'CheckpointMismatchError', 'CheckpointReadError', 'adopt_classifier_state_dict',
    'adopt_state_dict', 'check_family', 'check_state_dict', 'convert_for',
    'load_backbone_checkpoint', 'load_checkpoint_file', 'read_checkpoint', 'fit_state_dict'
]
