"""Whole-model checkpoints (detector, segmentor) fitted to the model before anything loads them.

mmengine loads whole models with strict=False and only logs what did not fit, so a RetinaNet file
without its head, or Semantic FPN weights given to a RetinaNet config, would evaluate, draw or
export a partly random model. :func:`fit_state_dict` runs first (from the Runner hook
:class:`mmpvt.engine.CheckpointFitHook` and from our inferencers and export) and decides:

* ``strict=True`` (testing, inference, export, resuming): a missing, unexpected or mis-shaped key
  is a :class:`~.errors.CheckpointMismatchError` naming the keys and what the file holds, and so
  are class names in the file's meta (``dataset_meta.classes``, which the inferencers draw and
  the export writes) of another number than the model predicts.
* ``strict=False`` (``load_from`` for fine-tuning, e.g. a COCO model into a head with another
  number of classes): what does not fit keeps the model's initial weights, and one log line names
  it, instead of mmengine's wall of warnings.

The backbone's own load-state-dict pre-hook (layout conversion, classifier entries dropped) and
any other module's pre-hook (mmpvt's DETR renaming mmdet 2.x keys) run first: the comparison is
made on what the modules would really load.
"""
import re
from collections import Counter, OrderedDict
from typing import List, Optional

from mmengine.logging import print_log
from mmengine.model import BaseTTAModel, is_model_wrapper
from torch import Tensor, nn

from ...families.layouts import StateDict, key_listing, module_metadata, shape_text
from .errors import CheckpointMismatchError


def _parts(keys) -> str:
    """'backbone (150), neck (16), bbox_head (8)': the top-level parts a set of keys covers."""
    counts = Counter(k.split('.', 1)[0] for k in keys)
    return ', '.join(f'{part} ({n})' for part, n in counts.items()) or 'nothing'


def _load_in_place(module: nn.Module, state_dict: StateDict, prefix: str = '') -> None:
    """Load `state_dict` into `module` as ``load_state_dict(strict=False)`` does, but on this
    very dict: torch's own copies it first, and the modules' pre-hooks (layout conversion,
    renaming) must change the dict the later loader reads. Size mismatches are skipped here
    (they are listed from the converted keys)."""
    missing: List[str] = []
    unexpected: List[str] = []
    errors: List[str] = []
    metadata = getattr(state_dict, '_metadata', None) or {}
    module._load_from_state_dict(state_dict, prefix, metadata.get(prefix[:-1], {}), False, missing,
                                 unexpected, errors)
    for name, child in module._modules.items():
        if child is not None:
            _load_in_place(child, state_dict, f'{prefix}{name}.')


# Where a model's number of classes lives, first match wins: a segmentor's decode head, the last
# stage of a two-stage detector's RoI head (its RPN head predicts 1 class), a one-stage
# detector's head, a classifier's head.
CLASS_HEADS = ('decode_head', 'roi_head.bbox_head', 'bbox_head', 'head')


def predicted_classes(model: nn.Module) -> Optional[int]:
    """How many classes `model` predicts (``num_classes`` of its head), None if it has no such
    head."""
    for path in CLASS_HEADS:
        head = model
        for name in path.split('.'):
            head = getattr(head, name, None)
        if isinstance(head, nn.ModuleList):  # cascade stages
            head = head[-1]
        if isinstance(getattr(head, 'num_classes', None), int):
            return head.num_classes
    return None


def check_class_names(model: nn.Module, checkpoint: dict, source: str) -> None:
    """The class names of `checkpoint`'s meta, if any, are as many as `model` predicts."""
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
    names = (meta.get('dataset_meta') or {}).get('classes')
    count = predicted_classes(model)
    if names is None or count is None or len(names) == count:
        return
    shown = ', '.join(map(str, list(names)[:4])) + (', ...' if len(names) > 4 else '')
    raise CheckpointMismatchError(
        f'The checkpoint {source} names {len(names)} classes in its meta '
        f'(dataset_meta.classes: {shown}); this {type(model).__name__} predicts {count}. Is it '
        'the checkpoint of this config? (Its drawings and exports would name the wrong classes.)')


def fit_state_dict(model: nn.Module, checkpoint: dict, source: str, strict: bool = True) -> None:
    """Check (and, when not `strict`, complete) the state dict of `checkpoint` against `model`.

    `checkpoint` is mmengine's loaded object (its ``state_dict`` entry, or itself; with
    `strict`, its meta's class names are checked too, :func:`check_class_names`); its state
    dict is replaced in place by what the modules' pre-hooks make of it, DDP's ``module.``
    prefix removed, so that the loader that follows (mmengine's, non-strict) finds exactly the
    model's keys and shapes. `source` names the file in messages.
    """
    if is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module  # what mmengine's loader loads into, too
    if strict:
        check_class_names(model, checkpoint, source)
    holder = 'state_dict' if isinstance(checkpoint.get('state_dict'), dict) else None
    raw = checkpoint[holder] if holder else checkpoint
    state_dict: StateDict = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in raw.items())
    # the modules' metadata (a recorded LayerNorm eps, BatchNorm's version) goes along
    state_dict._metadata = module_metadata(raw)
    _load_in_place(model, state_dict)
    expected = model.state_dict()
    # BatchNorm's step counter may be absent (mmengine's loader ignores it too): it keeps 0
    missing = [
        k for k in expected if k not in state_dict and not k.endswith('.num_batches_tracked')
    ]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        k for k in expected if k in state_dict and (
            not isinstance(state_dict[k], Tensor) or state_dict[k].shape != expected[k].shape)
    ]
    if missing or unexpected or mismatched:

        def shapes(k):
            return f'{k} {shape_text(state_dict[k])} vs {shape_text(expected[k])}'

        what = [
            f'{len(mismatched)} shape mismatches (file vs model): '
            f'{key_listing(mismatched, shapes, most=6)}' if mismatched else '',
            f'{len(missing)} keys missing from the file: {key_listing(missing, most=6)}'
            if missing else '', f'{len(unexpected)} keys the model does not have: '
            f'{key_listing(unexpected, most=6)}' if unexpected else ''
        ]
        what = '; '.join(w for w in what if w)
        if strict:
            raise CheckpointMismatchError(
                f'The checkpoint {source} does not fit this {type(model).__name__}: {what}. The '
                f'file holds {_parts(state_dict)}; the model has {_parts(expected)}. Is it the '
                'checkpoint of this config?')
        for k in unexpected:
            del state_dict[k]
        for k in missing + mismatched:
            state_dict[k] = expected[k]  # the model's initial weights
        print_log(
            f'load_from {source}: kept the initial weights of {len(missing + mismatched)} '
            f'tensors and skipped {len(unexpected)} ({what})', logger='current')
    if holder:
        checkpoint[holder] = state_dict
    else:
        checkpoint.clear()
        checkpoint.update(state_dict)
        if isinstance(checkpoint, OrderedDict):  # a plain dict has no metadata to keep
            checkpoint._metadata = state_dict._metadata
