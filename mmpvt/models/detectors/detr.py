"""mmdet 3.x's DETR, also loading mmdet 2.x DETR checkpoints such as the authors' PVT-S + DETR.

Why a subclass: mmdet 3.x moved the DETR transformer out of the head (see
:mod:`mmpvt.models.checkpoints.detr`), and mmengine loads whole models non-strictly, so an mmdet
2.x file would load the backbone and ``bbox_head.fc_*`` and leave the transformer random with only
a warning. Only the detector sees every key, so the renaming hook lives here; the backbone's own
hook converts the backbone's layout.
"""
from mmdet.models.detectors import DETR as MMDetDETR
from mmengine.logging import print_log

from ...registry import MODELS
from ...torch_compat import register_load_state_dict_pre_hook
from ..checkpoints import CheckpointMismatchError
from ..checkpoints.detr import MMDET2_MARKER, is_mmdet2_detr, mmdet2_detr_to_mmdet3


def _rename_mmdet2_keys(module: 'DETR', state_dict: dict, prefix: str, *args) -> None:
    if not is_mmdet2_detr(state_dict, prefix):
        return
    converted, renamed = mmdet2_detr_to_mmdet3(state_dict, prefix)
    head = [
        k[len(prefix):] for k in converted
        if k.startswith(prefix) and not k.startswith(prefix + 'backbone.')
    ]
    expected = [k for k in module.state_dict() if not k.startswith('backbone.')]
    missing = sorted(set(expected) - set(head))
    unexpected = sorted(set(head) - set(expected))
    if missing or unexpected:
        raise CheckpointMismatchError(
            'An mmdet 2.x DETR checkpoint that does not map onto this mmdet 3.x DETR: '
            f'{len(missing)} keys missing ({", ".join(missing[:6])}), {len(unexpected)} '
            f'unexpected ({", ".join(unexpected[:6])}). mmpvt maps the mmdet 2.13 '
            f'DETRHead/Transformer names ({MMDET2_MARKER}...); other 2.x variants are refused.')
    state_dict.clear()
    state_dict.update(converted)
    print_log(f'DETR: renamed {renamed} mmdet 2.x DETR tensors to mmdet 3.x names',
              logger='current')


@MODELS.register_module()
class DETR(MMDetDETR):
    """mmdet's :class:`~mmdet.models.detectors.DETR` (same arguments, same computation) that also
    reads mmdet 2.x DETR checkpoints, through any loader (``tools/test.py``, ``load_from``,
    inferencers). Config: ``model = dict(type='mmpvt.DETR', ...)``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        register_load_state_dict_pre_hook(self, _rename_mmdet2_keys)
