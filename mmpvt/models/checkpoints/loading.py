"""Loading a backbone checkpoint, strictly: read (any file or URL mmengine reads), convert, check.

Loading never ignores anything silently: classification-only entries are dropped with one info
line, a checkpoint of the other family is refused naming what it is, and every other key must
match the model's keys and shapes, else a :class:`~.errors.CheckpointMismatchError` names them.
Two entry points, :func:`load_backbone_checkpoint` (``init_cfg=dict(type='Pretrained', ...)``) and
:func:`adopt_state_dict` (the backbones' load-state-dict pre-hook, for every other loader), and
one path after reading: :func:`fit_to_backbone`.
"""
from collections import OrderedDict
from typing import List, Optional, Tuple
from urllib.error import URLError

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

from ...families import FAMILIES
from ...families.layouts import (HEAD_KEY, Conversion, StateDict, backbone_part, convert_classifier,
                                 convert_to_mmpvt, extract_state_dict, infer_arch, is_backbone_key,
                                 key_listing, shape_text, unwrap)
from ...safe_load import CheckpointFileError, CheckpointRefusedError, refusal_reason
from .errors import CheckpointMismatchError, CheckpointReadError


def arch_name(model: nn.Module) -> str:
    return getattr(model, 'arch_name', None) or 'custom'


def check_state_dict(state_dict: StateDict, model: nn.Module,
                     cast_dtypes: bool = False) -> StateDict:
    """Match a converted state dict to `model`, or raise :class:`CheckpointMismatchError`.

    What the model's family adapts (``model.adapt_state_dict``: v1 resizes a position table of
    another token grid, another pre-training size, bilinearly) is adapted, with an info line
    each; any other difference in keys or shapes is an error,
    and so is a value a trained weight cannot be: an integer or boolean tensor where the model
    holds floats (``cast_dtypes=True`` casts it to the model's dtype instead, explicitly) and a
    NaN or infinity. Floats of another precision (fp16 releases) are cast by loading, as usual.
    """
    expected = model.state_dict()
    family = getattr(model, 'family', type(model).__name__)
    out, notes = OrderedDict(state_dict), []
    if hasattr(model, 'adapt_state_dict'):  # a family's encoder (not, e.g., a classifier's head)
        out, notes = model.adapt_state_dict(out)
    for note in notes:
        print_log(f'{family}: {note}', logger='current')
    missing = [k for k in expected if k not in out]
    unexpected = [k for k in out if k not in expected]
    not_tensor = [k for k in expected if k in out and not isinstance(out[k], Tensor)]
    mismatched = [
        k for k in expected
        if k in out and k not in not_tensor and out[k].shape != expected[k].shape
    ]
    comparable = [k for k in expected if k in out and k not in mismatched + not_tensor]
    if cast_dtypes:
        for k in comparable:
            if expected[k].is_floating_point() and not out[k].is_floating_point():
                out[k] = out[k].to(expected[k].dtype)
    wrong_dtype = [
        k for k in comparable if expected[k].is_floating_point() and not out[k].is_floating_point()
    ]
    non_finite = {
        k: int((~torch.isfinite(out[k])).sum())
        for k in comparable if out[k].is_floating_point() and not torch.isfinite(out[k]).all()
    }
    if missing or unexpected or not_tensor or mismatched or wrong_dtype or non_finite:
        lines = [f'The checkpoint does not fit this {family} (arch {arch_name(model)}):']
        if not_tensor:
            lines.append(f'  {len(not_tensor)} entries that are not tensors (expected tensors): ' +
                         key_listing(
                             not_tensor, lambda k: f'{k} holds a {type(out[k]).__name__} '
                             f'({str(out[k])[:40]!r})'))
        if mismatched:
            lines.append(
                f'  {len(mismatched)} shape mismatches (checkpoint vs model): ' +
                key_listing(mismatched, lambda k: f'{k} {shape_text(out[k])} vs '
                            f'{shape_text(expected[k])}'))
        if wrong_dtype:
            lines.append(f'  {len(wrong_dtype)} tensors of a non-float dtype where the model '
                         'holds floats (checkpoint vs model; convert_checkpoint.py --cast-dtypes '
                         'casts them): ' + key_listing(
                             wrong_dtype, lambda k: f'{k} {str(out[k].dtype)[6:]} vs '
                             f'{str(expected[k].dtype)[6:]}'))
        if non_finite:
            lines.append(f'  {len(non_finite)} tensors with NaN or infinite values: ' + key_listing(
                list(non_finite), lambda k: f'{k} ({non_finite[k]} '
                f'of {out[k].numel()} values)'))
        if missing:
            lines.append(f'  {len(missing)} keys missing from the checkpoint: ' +
                         key_listing(missing, str))
        if unexpected:
            lines.append(f'  {len(unexpected)} unexpected keys in the checkpoint: ' +
                         key_listing(unexpected, str))
        if missing or unexpected or mismatched:  # another variant? (bad values: the same one)
            try:
                found = infer_arch(out, family)
                lines.append(f'  The checkpoint looks like {family} arch '
                             f'{found["name"] or found["arch"]}.')
            except (KeyError, ValueError, StopIteration, AttributeError):
                pass
        raise CheckpointMismatchError('\n'.join(lines))
    return out


def set_layer_norm_eps(model: nn.Module, eps: float) -> int:
    """Every LayerNorm of `model` to `eps`; how many changed."""
    if not eps > 0:
        raise ValueError(f'layer_norm_eps must be positive, got {eps}')
    changed = [m for m in model.modules() if isinstance(m, nn.LayerNorm) and m.eps != eps]
    for norm in changed:
        norm.eps = eps
    return len(changed)


def trained_layer_norm_eps(family_name: str, layout: str) -> Optional[float]:
    """The LayerNorm eps of every layer norm in the code that trains in `layout` of the family,
    where it is not the authors' (:class:`~mmpvt.families.common.Layout`'s ``layer_norm_eps``:
    mmdet's ports use 1e-6 throughout, the authors' code 1e-5 in patch embedding and spatial
    reduction); None for the authors' eps."""
    family = FAMILIES.get(family_name)
    return family.layouts[layout].layer_norm_eps if family and layout in family.layouts else None


def compute_as_trained(model: nn.Module, layout: str, source: str) -> None:
    """Give `model` the numerics of the code that trains in `layout`, where they are not the
    authors' (:func:`trained_layer_norm_eps`), so that the weights compute what they computed for
    their trainer; one log line says so. Checkpoints saved from `model` record it
    (:func:`record_layer_norm_eps`)."""
    eps = trained_layer_norm_eps(getattr(model, 'family', None), layout)
    changed = set_layer_norm_eps(model, eps) if eps is not None else 0
    if changed:
        print_log(
            f'{model.family}: {source} is in the {layout} layout, whose code computes with '
            f'LayerNorm eps {eps:g} throughout: {changed} layer norms set from the authors\' '
            f'eps to {eps:g}, so that the weights compute as they were trained (the '
            f'checkpoints saved from this model record it)', logger='current')


# A backbone whose LayerNorms all have one eps (mmdet's ports' 1e-6, set by loading their weights
# or by layer_norm_eps; the authors' differ by location: 1e-5 in patch embedding and spatial
# reduction, 1e-6 elsewhere) writes it into its entry of the state dict's per-module metadata,
# where torch keeps BatchNorm's version: torch.save and mmengine's save_checkpoint keep it, and a
# backbone that loads the state dict takes it. So the checkpoints of a model fine-tuned from
# mmdet's weights test and resume with the eps they were trained with.
LAYER_NORM_EPS_METADATA = 'mmpvt_layer_norm_eps'


def uniform_layer_norm_eps(model: nn.Module) -> Optional[float]:
    """The eps of `model`'s LayerNorms if they all have the same, else None (the authors')."""
    eps = {m.eps for m in model.modules() if isinstance(m, nn.LayerNorm)}
    return eps.pop() if len(eps) == 1 else None


def record_layer_norm_eps(model: nn.Module, state_dict: StateDict, prefix: str,
                          local_metadata: dict) -> None:
    """The backbones' state-dict hook: their eps into their metadata, where not the authors'."""
    eps = uniform_layer_norm_eps(model)
    if eps is not None:
        local_metadata[LAYER_NORM_EPS_METADATA] = eps


def saved_layer_norm_eps(state_dict: StateDict, prefix: Optional[str] = None) -> Optional[float]:
    """The LayerNorm eps that the backbone under `prefix` (e.g. 'backbone.'; None: the top level,
    else 'backbone.', as :func:`~mmpvt.families.layouts.extract_state_dict` picks it) recorded in
    the per-module metadata of a checkpoint's state dict as
    :func:`~mmpvt.families.layouts.unwrap` returns it; None if it recorded none. Safetensors files
    and state dicts rebuilt key by key hold no such record."""
    metadata = getattr(state_dict, '_metadata', None) or {}
    paths = [prefix.rstrip('.')] if prefix else ['', 'backbone']
    for path in paths:
        entry = metadata.get(path)
        if isinstance(entry, dict) and LAYER_NORM_EPS_METADATA in entry:
            return entry[LAYER_NORM_EPS_METADATA]
    return None


def with_saved_layer_norm_eps(state_dict: StateDict, eps: Optional[float],
                              module_path: str = '') -> StateDict:
    """`state_dict` (an OrderedDict) recording `eps` for the backbone at `module_path` ('' at
    the top level, 'backbone' in a detector's), as that backbone's state dict would; None:
    unchanged."""
    if eps is not None:
        metadata = getattr(state_dict, '_metadata', None) or OrderedDict()
        metadata.setdefault(module_path, {})[LAYER_NORM_EPS_METADATA] = eps
        state_dict._metadata = metadata
    return state_dict


def compute_as_saved(model: nn.Module, eps: Optional[float], source: str) -> None:
    """Give `model` the LayerNorm eps its checkpoint recorded (None: nothing recorded, nothing
    changes; it overrides the backbone's ``layer_norm_eps``); one log line where that changes
    the model."""
    if eps is None:
        return
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise CheckpointMismatchError(
            f'{source} records LayerNorm eps {eps!r} for its {model.family} backbone; expected a '
            'number between 0 and 1 (is the file damaged?)')
    changed = set_layer_norm_eps(model, float(eps))
    if changed:
        print_log(
            f'{model.family}: {source} was saved from a model computing with LayerNorm eps '
            f'{eps:g} throughout: {changed} layer norms set to {eps:g}', logger='current')


def convert_for(model: nn.Module, state_dict: StateDict) -> Conversion:
    """:func:`convert_to_mmpvt` for the backbone `model`: one with a class token (PVT v1 as a
    classifier) keeps the checkpoint's class token, final norm and class-token position; the
    linear head is never a backbone's and is dropped (named in ``dropped``)."""
    if not model.with_cls_token:
        return convert_to_mmpvt(state_dict)
    converted = convert_to_mmpvt(state_dict, classifier=True)
    head = [k for k in converted.state_dict if HEAD_KEY.match(k)]
    kept = OrderedDict((k, v) for k, v in converted.state_dict.items() if k not in head)
    return converted._replace(state_dict=kept, dropped=converted.dropped + head)


def fit_to_backbone(model: nn.Module, state_dict: StateDict, source: str) -> Conversion:
    """What every loader of a backbone's weights does once it has read them: convert them from
    any known layout (unless their keys are already the model's), refuse the other family, match
    keys, shapes and values to `model` (:func:`check_state_dict`) and give `model` the numerics
    of the weights' trainer (:func:`compute_as_trained`). `source` names the weights in errors and
    log lines ('The state dict under 'backbone.'', a file name). Returns the fitted state dict
    with the family, layout and dropped classification-only entries found."""
    family, layout, dropped = model.family, 'mmpvt', []
    if set(state_dict) != set(model.state_dict()):
        try:
            state_dict, family, layout, dropped = convert_for(model, state_dict)
        except ValueError as e:  # neither family
            raise CheckpointMismatchError(f'{source}: {e}') from e
        check_family(model, family, layout, source)
    try:
        state_dict = check_state_dict(state_dict, model)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f'{source}: {e}') from e
    compute_as_trained(model, layout, source)
    return Conversion(state_dict, family, layout, dropped)


def adopt_state_dict(model: nn.Module, state_dict: StateDict, prefix: str) -> None:
    """Convert, in place, the entries of `state_dict` under `prefix` to `model`'s mmpvt layout.

    The body of the backbones' load-state-dict pre-hook, so that *every* loader (mmengine's
    ``load_checkpoint`` behind ``tools/test.py``, ``load_from``, ``--resume`` and the mmdet/mmseg
    inferencers, or ``nn.Module.load_state_dict``) can read a whole detector/segmentor whose
    backbone is in the official, mmdet, timm or transformers layout. mmengine loads whole models
    with strict=False and only logs what it missed, so anything that does not fit is an error
    here: no key under `prefix`, the other family, missing, unexpected or mis-shaped keys.
    """
    keys = [k for k in state_dict if k.startswith(prefix)]
    where = f'under {prefix!r}' if prefix else 'at the top level'
    family = getattr(model, 'family', type(model).__name__)
    if not keys:
        raise CheckpointMismatchError(
            f'The state dict loaded into this model has no weights for its {family} backbone '
            f'(no key {where}); it would keep its initial weights. Its first keys: ' +
            ', '.join(list(state_dict)[:5]))
    sub: StateDict = OrderedDict((k[len(prefix):], state_dict[k]) for k in keys)
    sub, _, layout, dropped = fit_to_backbone(model, sub, f'The state dict {where}')
    if layout == 'mmpvt' and not dropped:  # the model's own keys: replaced where they are
        state_dict.update((prefix + k, v) for k, v in sub.items())
    else:
        for k in keys:
            del state_dict[k]
        state_dict.update((prefix + k, v) for k, v in sub.items())
        print_log(
            f'{family}: converted the {len(sub)} tensors {where} from the {layout} layout' +
            (f'; dropped classification-only entries: {", ".join(dropped)}' if dropped else ''),
            logger='current')


def adopt_classifier_state_dict(backbone: nn.Module, state_dict: StateDict, prefix: str) -> None:
    """Convert, in place, a whole ImageNet classifier of another layout under `prefix` (the
    authors', timm's, transformers') to the names of the mmpretrain ``ImageClassifier`` around
    `backbone`: ``backbone.*`` in mmpvt's layout, the linear head as ``head.fc.*``.

    The body of the backbones' ``_checkpoint_filter``, which ImageClassifier registers as its own
    load-state-dict pre-hook, so that every loader of the classifier reads these files. A state
    dict that already has ``backbone.`` keys (mmpvt's or any ImageClassifier's) is left to the
    backbone's own hook (:func:`adopt_state_dict`), and so is one without any key of ours; a
    classifier of the other family is an error saying what it is. What the backbone does not
    fit (another variant) is reported by the backbone's hook, which runs next.
    """
    keys = [k for k in state_dict if k.startswith(prefix)]
    sub: StateDict = OrderedDict((k[len(prefix):], state_dict[k]) for k in keys)
    if any(k.startswith('backbone.') for k in sub) or not any(is_backbone_key(k) for k in sub):
        return
    where = f'under {prefix!r}' if prefix else 'at the top level'
    try:
        converted = convert_classifier(sub)
    except ValueError as e:
        raise CheckpointMismatchError(f'The weights {where}: {e}') from e
    check_family(backbone, converted.family, converted.layout, f'The state dict {where}')
    compute_as_trained(backbone, converted.layout, f'the state dict {where}')
    for k in keys:
        del state_dict[k]
    state_dict.update((prefix + k, v) for k, v in converted.state_dict.items())
    print_log(
        f'{backbone.family}: converted the {len(sub)} tensors {where} from a classifier in '
        f'the {converted.layout} layout to an ImageClassifier\'s (backbone.*, head.fc.*)',
        logger='current')


def load_checkpoint_file(filename: str, map_location: str = 'cpu') -> dict:
    """mmengine's CheckpointLoader (paths, URLs, ...) with errors that name the file and say what
    to do, instead of a bare URLError / zip-reader / unpickling message."""
    name = str(filename)
    try:
        checkpoint = CheckpointLoader.load_checkpoint(name, map_location=map_location,
                                                      logger='current')
    except FileNotFoundError as e:
        raise CheckpointReadError(f'Checkpoint file not found: {name} ({e})') from e
    except (CheckpointRefusedError, CheckpointFileError) as e:  # they name the file and why
        raise CheckpointReadError(str(e)) from e
    except (URLError, ConnectionError, TimeoutError) as e:
        raise CheckpointReadError(
            f'Could not download the checkpoint {name}: {e}. If this machine is offline, download '
            'the file elsewhere, copy it here and set checkpoint= to its local path (downloads are '
            'cached in $TORCH_HOME/hub/checkpoints, ~/.cache/torch/hub/checkpoints by default).'
        ) from e
    except Exception as e:  # noqa: BLE001  truncated zip, text file, wrong pickle, ...
        raise CheckpointReadError(
            f'Could not read the checkpoint {name}: {type(e).__name__}: {refusal_reason(e)}. '
            'Expected a PyTorch checkpoint written by torch.save (is the file complete?).') from e
    if not isinstance(checkpoint, dict):
        raise CheckpointReadError(
            f'The checkpoint {name} holds a {type(checkpoint).__name__}; expected a dict: a state '
            "dict of tensors, or a training checkpoint with a 'state_dict' entry.")
    return checkpoint


def read_checkpoint(filename: str, prefix: Optional[str] = None, map_location: str = 'cpu',
                    model: Optional[nn.Module] = None) -> Conversion:
    """Read the backbone of a checkpoint of any known layout and convert it to mmpvt's (for the
    backbone `model`, see :func:`convert_for`; None: a backbone for dense prediction), without
    loading it anywhere."""
    sd = extract_state_dict(load_checkpoint_file(filename, map_location), prefix)
    try:
        return convert_for(model, sd) if model is not None else convert_to_mmpvt(sd)
    except ValueError as e:  # neither family: name the file
        raise CheckpointMismatchError(f'{filename}: {e}') from e


def check_family(model: nn.Module, family: str, layout: str, source: str) -> None:
    if family != model.family:
        raise CheckpointMismatchError(
            f'{source} is a {family} checkpoint ({layout} layout); it cannot be loaded into '
            f'{model.family}. Use type=\'mmpvt.{family}\' for it, or a {model.family} checkpoint.')


def load_backbone_checkpoint(model: nn.Module, filename: str, prefix: Optional[str] = None,
                             map_location: str = 'cpu') -> Tuple[str, List[str]]:
    """Load a PVT/PVTv2 checkpoint of any known layout (file, URL, ...) into `model`, strictly.

    Returns (detected layout, dropped classification-only entries).
    """
    state_dict = unwrap(load_checkpoint_file(filename, map_location))[0]
    converted, _, layout, dropped = fit_to_backbone(model, backbone_part(state_dict, prefix),
                                                    str(filename))
    model.load_state_dict(converted, strict=True)
    compute_as_saved(model, saved_layer_norm_eps(state_dict, prefix), str(filename))
    print_log(
        f'{model.family}: loaded {len(converted)} tensors ({layout} layout) from {filename}' +
        (f'; dropped classification-only entries: {", ".join(dropped)}' if dropped else ''),
        logger='current')
    return layout, dropped
