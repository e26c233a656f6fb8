"""Converting checkpoint files: any known layout in, an mmpvt checkpoint out (what
``tools/convert_checkpoint.py`` does)."""
import os
from collections import OrderedDict
from typing import Optional, Tuple

from ..fileio import atomic_torch_save
from ..models.archs import ARCHS_BY_FAMILY
from ..models.backbones import PVT, PVTv2
from ..models.checkpoints import (CheckpointMismatchError, StateDict, backbone_part,
                                  check_state_dict, convert_to_mmpvt, infer_arch, is_backbone_key,
                                  load_checkpoint_file, unwrap)
from ..models.checkpoints.detr import is_mmdet2_detr, mmdet2_detr_to_mmdet3
from ..version import __version__


def _build_checked(converted: StateDict, family: str, layout: str, src: str,
                   arch: Optional[str], cast_dtypes: bool) -> Tuple[StateDict, str]:
    """Validate a converted backbone against a model of `arch` (or the arch its shapes imply)."""
    cls = PVT if family == 'PVT' else PVTv2
    if arch is not None and arch not in ARCHS_BY_FAMILY[family]:
        raise CheckpointMismatchError(
            f'{src} is a {family} checkpoint ({layout} layout) but --arch {arch} is not a '
            f'{family} arch ({", ".join(ARCHS_BY_FAMILY[family])})')
    found = infer_arch(converted, family)
    model = cls(arch=arch if arch is not None else found['arch'])
    converted = check_state_dict(converted, model, cast_dtypes=cast_dtypes)
    model.load_state_dict(converted, strict=True)
    return converted, arch or found['name'] or found['arch']


def convert_checkpoint_file(src: str, dst: str, arch: Optional[str] = None,
                            backbone_only: bool = False, cast_dtypes: bool = False) -> dict:
    """Convert a checkpoint file to mmpvt's layout and write it atomically to `dst`.

    A backbone checkpoint (official, mmdet, timm, transformers) is written as an mmpvt backbone
    state dict. A whole detector/segmentor (backbone under ``backbone.``, e.g. the authors'
    mmdet 2.13 / mmseg 0.13 releases) is written whole: the backbone converted, mmdet 2.x DETR
    keys renamed to 3.x (:mod:`.detr`), every other tensor and the ``meta`` kept, so that
    ``tools/test.py CONFIG OUT`` reads it like any mmpvt-trained checkpoint; `backbone_only` keeps
    only the backbone. The backbone is validated by loading it into a model of its family and of
    `arch` (or of the arch its shapes imply); `cast_dtypes` casts integer tensors where the model
    holds floats instead of refusing them. `dst` may not be `src` (the source is never
    overwritten). Returns a summary dict.
    """
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise ValueError(f'the output {dst} is the checkpoint being converted ({src}); write the '
                         'conversion to another file (the source would be lost)')
    sd, meta = unwrap(load_checkpoint_file(src))
    whole = (not any(is_backbone_key(k) for k in sd) and any(k.startswith('backbone.') for k in sd)
             and any(not k.startswith('backbone.') for k in sd))
    backbone = backbone_part(sd, 'backbone.' if whole else None)
    try:
        converted, family, layout, dropped = convert_to_mmpvt(backbone)
    except ValueError as e:  # neither family: name the file
        raise CheckpointMismatchError(f'{src}: {e}') from e
    converted, name = _build_checked(converted, family, layout, str(src), arch, cast_dtypes)
    info = dict(family=family, layout=layout, arch=name, num_tensors=len(converted),
                dropped=dropped, whole_model=whole and not backbone_only, other_tensors=0,
                renamed_detr=0)
    mmpvt_meta = dict(mmpvt_version=__version__, source=str(src), family=family,
                      source_layout=layout, arch=name)
    if not info['whole_model']:
        atomic_torch_save({'state_dict': converted, 'meta': mmpvt_meta}, dst)
        return info
    rest = OrderedDict((k, v) for k, v in sd.items() if not k.startswith('backbone.'))
    if is_mmdet2_detr(rest):
        rest, info['renamed_detr'] = mmdet2_detr_to_mmdet3(rest)
    out = OrderedDict((f'backbone.{k}', v) for k, v in converted.items())
    out.update(rest)
    info['other_tensors'] = len(rest)
    meta.update(mmpvt=mmpvt_meta)
    if 'CLASSES' in meta and 'dataset_meta' not in meta:  # mmdet 2.x / mmseg 0.x -> 3.x / 1.x
        meta['dataset_meta'] = dict(classes=tuple(meta['CLASSES']))
        if meta.get('PALETTE') is not None:
            meta['dataset_meta']['palette'] = [tuple(c) for c in meta['PALETTE']]
    atomic_torch_save({'state_dict': out, 'meta': meta}, dst)
    return info
