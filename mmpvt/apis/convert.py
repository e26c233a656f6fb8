"""Converting checkpoint files: any known layout in, an mmpvt checkpoint out (what
``tools/convert_checkpoint.py`` does)."""
import os
from collections import OrderedDict
from typing import Optional, Tuple, Union

from mmengine.config import Config
from torch import Tensor, nn

from ..families import FAMILIES
from ..families.layouts import (CLASSIFIER_HEAD, Conversion, StateDict, backbone_part,
                                convert_classifier, convert_to_mmpvt, infer_arch, is_backbone_key,
                                unwrap)
from ..fileio import atomic_torch_save
from ..models.builder import build_from_config
from ..models.checkpoints import CheckpointMismatchError, check_state_dict, load_checkpoint_file
from ..models.checkpoints.detr import is_mmdet2_detr, mmdet2_detr_to_mmdet3
from ..models.checkpoints.loading import (saved_layer_norm_eps, trained_layer_norm_eps,
                                          with_saved_layer_norm_eps)
from ..version import __version__

HEAD_KEYS = (CLASSIFIER_HEAD + 'weight', CLASSIFIER_HEAD + 'bias')


def _arch_of(converted: StateDict, family: str, layout: str, src: str,
             arch: Optional[str]) -> Tuple[Union[str, dict], Union[str, dict]]:
    """(what to build, its name) for a converted backbone: `arch`, or the arch its shapes imply;
    an `arch` of the other family is an error."""
    archs = FAMILIES[family].archs
    if arch is not None and arch not in archs:
        raise CheckpointMismatchError(
            f'{src} is a {family} checkpoint ({layout} layout) but --arch {arch} is not a '
            f'{family} arch ({", ".join(archs)})')
    found = infer_arch(converted, family)
    return (arch if arch is not None else found['arch']), arch or found['name'] or found['arch']


def _build_checked(converted: StateDict, family: str, layout: str, src: str, arch: Optional[str],
                   cast_dtypes: bool) -> Tuple[StateDict, str]:
    """Validate a converted backbone against a model of `arch` (or the arch its shapes imply)."""
    build, name = _arch_of(converted, family, layout, src, arch)
    model = FAMILIES[family].encoder(arch=build)
    try:
        converted = check_state_dict(converted, model, cast_dtypes=cast_dtypes)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f'{src}: {e}') from e
    model.load_state_dict(converted, strict=True)
    return converted, name


def build_classifier(family: str, arch: Union[str, dict], num_classes: int) -> nn.Module:
    """The mmpretrain ``ImageClassifier`` of configs/imagenet/ for `arch` (the family's
    ``classifier`` record: PVT v1 the class token into the linear head, PVTv2 the last stage
    averaged by ``GlobalAveragePooling``) with `num_classes` classes, randomly initialised."""
    record = FAMILIES[family]
    width = (record.archs[arch] if isinstance(arch, str) else arch)['embed_dims'][-1]
    backbone = dict(type=f'mmpvt.{family}', arch=arch, **record.classifier['backbone'])
    model = dict(type='ImageClassifier', backbone=backbone, neck=record.classifier['neck'],
                 head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=width))
    return build_from_config(Config(dict(default_scope='mmpretrain', model=model)))


def _classifier_checked(conversion: Conversion, src: str, arch: Optional[str],
                        cast_dtypes: bool) -> Tuple[StateDict, str, int]:
    """Validate a converted whole classifier (:func:`convert_classifier`) by loading it strictly
    into the :func:`build_classifier` of its family and arch (`arch`, or the one its backbone's
    shapes imply) with as many classes as its head has rows. Returns (the state dict in the
    classifier's key order, the arch's name, the number of classes)."""
    sd, family, layout = conversion.state_dict, conversion.family, conversion.layout
    backbone = OrderedDict(
        (k[len('backbone.'):], v) for k, v in sd.items() if k.startswith('backbone.'))
    head = OrderedDict((k, v) for k, v in sd.items() if not k.startswith('backbone.'))
    build, name = _arch_of(backbone, family, layout, src, arch)
    weight = head.get(HEAD_KEYS[0])
    if set(head) != set(HEAD_KEYS) or not isinstance(weight, Tensor) or weight.dim() != 2:
        raise CheckpointMismatchError(
            f'{src}: the classifier\'s head must be one linear layer (a 2-D weight and a bias); '
            'got ' + ', '.join(f'{k} {tuple(getattr(v, "shape", ()))}' for k, v in head.items()))
    model = build_classifier(family, build, num_classes=weight.shape[0])
    if weight.shape[1] != model.head.fc.in_features:
        raise CheckpointMismatchError(
            f'{src}: the classifier\'s head takes {weight.shape[1]} features, but the {family} '
            f'{name} backbone it holds gives {model.head.fc.in_features}')
    try:
        backbone = check_state_dict(backbone, model.backbone, cast_dtypes=cast_dtypes)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f'{src}: the classifier\'s backbone: {e}') from e
    try:
        fc = check_state_dict(
            OrderedDict((k[len('head.'):], v) for k, v in head.items()), model.head,
            cast_dtypes=cast_dtypes)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f'{src}: the classifier\'s head: {e}') from e
    full = OrderedDict(('backbone.' + k, v) for k, v in backbone.items())
    full.update(('head.' + k, v) for k, v in fc.items())
    out = OrderedDict((k, full[k]) for k in model.state_dict() if k in full)
    model.load_state_dict(out, strict=True)
    return out, name, int(weight.shape[0])


def convert_checkpoint_file(src: str, dst: str, arch: Optional[str] = None,
                            backbone_only: bool = False, cast_dtypes: bool = False) -> dict:
    """Convert a checkpoint file to mmpvt's layout and write it atomically to `dst`.

    A backbone checkpoint (official, mmdet, timm, transformers) is written as an mmpvt backbone
    state dict. An ImageNet classifier (a linear head beside the backbone: the authors'
    ``pvt_small.pth`` / ``pvt_v2_b2.pth``, timm's and transformers' classifiers) is written as
    the state dict of mmpretrain's ``ImageClassifier`` of configs/imagenet/ (``backbone.*``,
    ``head.fc.*``; :func:`convert_classifier`), validated by loading it strictly into that
    classifier of its arch with as many classes as its head has rows. A whole
    detector/segmentor (backbone under ``backbone.``, e.g. the authors' mmdet 2.13 / mmseg 0.13
    releases) is written whole: the backbone converted, mmdet 2.x DETR keys renamed to 3.x
    (:mod:`.detr`), every other tensor and the ``meta`` kept, so that ``tools/test.py CONFIG
    OUT`` reads it like any mmpvt-trained checkpoint. `backbone_only` keeps only the backbone of
    a classifier or a whole model. The backbone is validated by loading it into a model of its
    family and of `arch` (or of the arch its shapes imply); `cast_dtypes` casts integer tensors
    where the model holds floats instead of refusing them. `dst` may not be `src` (the source is
    never overwritten). A backbone trained with one LayerNorm eps where the authors' differ
    (mmdet's layout, or an mmpvt file that recorded it) is written recording that eps, which the
    backbone that loads the file takes. Returns a summary dict (``layer_norm_eps``: that eps).
    """
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise ValueError(f'the output {dst} is the checkpoint being converted ({src}); write the '
                         'conversion to another file (the source would be lost)')
    sd, meta = unwrap(load_checkpoint_file(src))
    whole = (not any(is_backbone_key(k) for k in sd) and any(k.startswith('backbone.') for k in sd)
             and any(not k.startswith('backbone.') for k in sd))
    backbone = backbone_part(sd, 'backbone.' if whole else None)
    try:
        classifier = None if whole or backbone_only else convert_classifier(backbone)
        if classifier is not None and HEAD_KEYS[0] not in classifier.state_dict:
            classifier = None  # no head: a backbone (a v1 class token alone is dropped)
        converted, family, layout, dropped = (
            classifier if classifier is not None else convert_to_mmpvt(backbone))
    except ValueError as e:  # neither family: name the file
        raise CheckpointMismatchError(f'{src}: {e}') from e
    info = dict(family=family, layout=layout, whole_model=whole and not backbone_only,
                classifier=classifier is not None, num_classes=None, other_tensors=0,
                renamed_detr=0)
    mmpvt_meta = dict(mmpvt_version=__version__, source=str(src), family=family,
                      source_layout=layout)
    # the LayerNorm eps its trainer computed with, where not the authors' (mmdet's layout, or
    # what an mmpvt checkpoint recorded): the written file records it for its backbone
    eps = (
        trained_layer_norm_eps(family, layout)
        or saved_layer_norm_eps(sd, 'backbone.' if whole else None))
    info['layer_norm_eps'] = eps
    if classifier is not None:
        converted, name, info['num_classes'] = _classifier_checked(classifier, str(src), arch,
                                                                   cast_dtypes)
        info.update(arch=name, num_tensors=len(converted), dropped=dropped)
        meta.update(mmpvt=dict(mmpvt_meta, arch=name, num_classes=info['num_classes']))
        converted = with_saved_layer_norm_eps(OrderedDict(converted), eps, 'backbone')
        atomic_torch_save({'state_dict': converted, 'meta': meta}, dst)
        return info
    converted, name = _build_checked(converted, family, layout, str(src), arch, cast_dtypes)
    info.update(arch=name, num_tensors=len(converted), dropped=dropped)
    mmpvt_meta.update(arch=name)
    if not info['whole_model']:
        converted = with_saved_layer_norm_eps(OrderedDict(converted), eps)
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
    atomic_torch_save({
        'state_dict': with_saved_layer_norm_eps(out, eps, 'backbone'),
        'meta': meta
    }, dst)
    return info


def describe_conversion(info: dict) -> str:
    """What :func:`convert_checkpoint_file` wrote, in words (its summary dict `info`)."""
    if info['classifier']:
        return (f'classifier: {info["family"]} {info["arch"]}, {info["layout"]} layout, '
                f'{info["num_classes"]} classes, {info["num_tensors"]} tensors')
    if info['whole_model']:
        return (f'whole model: backbone {info["family"]} {info["arch"]} ({info["layout"]} layout, '
                f'{info["num_tensors"]} tensors) converted, {info["other_tensors"]} other tensors '
                'kept' + (f', {info["renamed_detr"]} mmdet 2.x DETR tensors renamed'
                          if info['renamed_detr'] else ''))
    return (f'{info["family"]}, {info["layout"]} layout, arch {info["arch"]}, '
            f'{info["num_tensors"]} tensors')
