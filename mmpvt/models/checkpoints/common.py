"""Checkpoint plumbing shared by PVT v1 and PVTv2: read, identify, convert, check, load, write.

A checkpoint is identified from its key names alone: its *family* (a v1 one has position tables,
a v2 one depth-wise convs in the feed-forward and per-stage norms) and its *layout* (official,
mmdet, timm, transformers, mmpvt; see :mod:`.pvt_v1` and :mod:`.pvt_v2`). Any of them may be
wrapped in a training checkpoint (``state_dict``/``model``/``module``) and carry a ``backbone.``
prefix (a whole detector or segmentor). Loading never ignores anything silently: classification-only
entries are dropped with one info line, a checkpoint of the other family is refused naming what it
is, and every other key must match the model's keys and shapes, else a
:class:`CheckpointMismatchError` names them.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple
from urllib.error import URLError

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

StateDict = Dict[str, Tensor]

# Key patterns of each layout (either family); ``timm`` before ``mmpvt``: both use ``stages.``.
LAYOUT_PATTERNS = OrderedDict(
    official=re.compile(r'^(patch_embed\d+\.|pos_embed\d+$|block\d+\.\d+\.|norm\d+\.)'),
    mmdet=re.compile(r'^layers\.\d+\.\d+\.'),
    timm=re.compile(r'^(patch_embed\.(proj|norm)\.|stages\.\d+\.downsample\.'
                    r'|stages\.\d+\.blocks\.\d+\.mlp\.dwconv\.(weight|bias)$)'),
    transformers=re.compile(r'^(pvt_v2\.)?encoder\.layers\.\d+\.'),
    mmpvt=re.compile(r'^stages\.\d+\.(patch_embed\.|pos_embed$|blocks\.|norm\.)'),
)
EXAMPLES = ('"patch_embed1.proj.weight" (official), "layers.0.0.projection.weight" (mmdet), '
            '"stages.0.downsample.proj.weight" (timm), '
            '"encoder.layers.0.patch_embedding.proj.weight" (transformers) or '
            '"stages.0.patch_embed.proj.weight" (mmpvt)')


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model: another family, missing/unexpected keys, shapes."""


class CheckpointReadError(ValueError):
    """The checkpoint could not be read (missing, truncated, not a PyTorch file, download failed)."""


def drop_keys(state_dict: StateDict, pattern: 're.Pattern') -> Tuple[StateDict, List[str]]:
    """(the entries whose key does not match `pattern`, the keys that do)."""
    dropped = [k for k in state_dict if pattern.match(k)]
    return OrderedDict((k, v) for k, v in state_dict.items() if k not in dropped), dropped


def split_in_proj(prefix: str, rest: str, value: Tensor) -> StateDict:
    """An mmdet ``attn.attn.in_proj_{weight,bias}`` (rows q, k, v) -> ``attn.q`` and ``attn.kv``."""
    kind = rest[len('attn.attn.in_proj_'):]
    dim = value.shape[0] // 3
    return {f'{prefix}attn.q.{kind}': value[:dim], f'{prefix}attn.kv.{kind}': value[dim:]}


def mmdet_layers_to_mmpvt(state_dict: StateDict, layer_renames: Tuple[Tuple[str, str], ...],
                          first_block: int, stage_keys: Tuple[Tuple[str, str], ...]) -> StateDict:
    """mmdet 3.x ``PyramidVisionTransformer(V2)`` keys -> mmpvt keys; what v1 and v2 share.

    ``layers.{s}.0.{projection,norm}`` -> ``stages.{s}.patch_embed.{proj,norm}``;
    ``layers.{s}.1.{j + first_block}.X`` -> ``stages.{s}.blocks.{j}.X`` with q/kv split out of
    ``attn.attn.in_proj_*``, `layer_renames` (prefix pairs) applied and fc1/fc2 weights stored as
    1x1 convolutions flattened; `stage_keys`: (regex on the part after ``layers.{s}.``,
    replacement) for the rest of a stage (v1's position table, v2's stage norm). Unknown keys are
    kept, so check_state_dict reports them.
    """
    out: StateDict = OrderedDict()
    for key, value in state_dict.items():
        m = re.match(r'^layers\.(\d+)\.(.*)$', key)
        if not m:
            out[key] = value
            continue
        stage, rest = m.group(1), m.group(2)
        m = re.match(r'^0\.(projection|norm)\.(.*)$', rest)
        if m:
            name = 'proj' if m.group(1) == 'projection' else 'norm'
            out[f'stages.{stage}.patch_embed.{name}.{m.group(2)}'] = value
            continue
        special = next(((p, r) for p, r in stage_keys if re.match(p, rest)), None)
        if special:
            out[f'stages.{stage}.' + re.sub(special[0], special[1], rest)] = value
            continue
        m = re.match(r'^1\.(\d+)\.(.*)$', rest)
        if not m:
            out[key] = value
            continue
        prefix, rest = f'stages.{stage}.blocks.{int(m.group(1)) - first_block}.', m.group(2)
        if rest.startswith('attn.attn.in_proj_'):
            out.update(split_in_proj(prefix, rest, value))
            continue
        for old, new in layer_renames:
            if rest.startswith(old):
                rest = new + rest[len(old):]
                break
        if rest.startswith('mlp.fc') and rest.endswith('weight') and value.dim() == 4:
            value = value.flatten(1)  # fc1/fc2 stored as 1x1 convolutions
        out[prefix + rest] = value
    return out


def _families():
    from . import pvt_v1, pvt_v2
    return (pvt_v2, pvt_v1)  # v2 first: its markers are the more specific ones


def is_backbone_key(key: str) -> bool:
    return any(p.match(key) for p in LAYOUT_PATTERNS.values())


def identify(state_dict: StateDict) -> Tuple[str, str]:
    """(family, layout) of a backbone state dict: ('PVT' | 'PVTv2', 'official' | 'mmdet' | 'timm'
    | 'transformers' | 'mmpvt'); ValueError naming example keys if it is neither family."""
    counts = {name: sum(bool(p.match(k)) for k in state_dict)
              for name, p in LAYOUT_PATTERNS.items()}
    if counts['timm']:  # timm shares ``stages.{i}.blocks`` with mmpvt; its own keys decide
        counts['mmpvt'] = 0
    layout = max(counts, key=counts.get)
    family = next((f.FAMILY for f in _families() if any(f.MARKER.search(k) for k in state_dict)),
                  None)
    if counts[layout] == 0 or family is None:
        sample = ', '.join(list(state_dict)[:5])
        raise ValueError(f'Not a PVT or PVTv2 checkpoint: expected keys like {EXAMPLES}; got '
                         f'{sample} ...')
    return family, layout


def _unwrap(checkpoint: dict) -> Tuple[StateDict, dict]:
    """(state dict, meta) of a loaded checkpoint object; DDP ``module.`` prefix removed."""
    if not isinstance(checkpoint, dict):
        raise TypeError(f'A checkpoint must be a dict of tensors, got {type(checkpoint).__name__}')
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
    sd = checkpoint
    for wrapper in ('state_dict', 'model', 'module'):
        if isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
            break
    if sd and all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    return OrderedDict(sd), dict(meta)


def extract_state_dict(checkpoint: dict, prefix: Optional[str] = None) -> StateDict:
    """The backbone's tensors from a loaded checkpoint object.

    Unwraps ``state_dict``/``model``/``module`` containers and a DDP ``module.`` prefix. With
    `prefix` (e.g. ``'backbone.'``) only keys under it are kept, prefix removed; without it a
    ``backbone.`` prefix is stripped automatically when no top-level key is a backbone key.
    """
    return _backbone_part(_unwrap(checkpoint)[0], prefix)


def _backbone_part(sd: StateDict, prefix: Optional[str]) -> StateDict:
    """extract_state_dict on an already unwrapped state dict."""
    if prefix is None and not any(is_backbone_key(k) for k in sd):
        if any(k.startswith('backbone.') for k in sd):
            prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        picked = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not picked:
            raise ValueError(f'No key in the checkpoint starts with prefix {prefix!r}')
        print_log(f'PVT: took {len(picked)} tensors under {prefix!r} (the rest of the model, '
                  f'{len(sd) - len(picked)} tensors, is not the backbone\'s)', logger='current')
        sd = picked
    return OrderedDict(sd)


def _family_module(name: str):
    return next(f for f in _families() if f.FAMILY == name)


def _convert(state_dict: StateDict) -> Tuple[StateDict, str, str, List[str]]:
    """(mmpvt state dict, family, layout, dropped classifier entries) of any known layout."""
    family, layout = identify(state_dict)
    converted, dropped = _family_module(family).TO_MMPVT[layout](state_dict)
    return converted, family, layout, dropped


def convert_to_mmpvt(state_dict: StateDict) -> Tuple[StateDict, str, List[str]]:
    """Any known layout -> (mmpvt state dict, detected layout, dropped classifier entries)."""
    converted, _, layout, dropped = _convert(state_dict)
    return converted, layout, dropped


def infer_arch(state_dict: StateDict, family: str) -> dict:
    """dict(arch=..., name=...) of the `family` model an mmpvt-layout state dict fits."""
    return _family_module(family).infer_arch(state_dict)


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def _shape(t) -> str:
    return 'x'.join(map(str, t.shape)) if isinstance(t, Tensor) else type(t).__name__


def arch_name(model: nn.Module) -> str:
    return getattr(model, 'arch_name', None) or 'custom'


def check_state_dict(state_dict: StateDict, model: nn.Module) -> StateDict:
    """Match a converted state dict to `model`, or raise :class:`CheckpointMismatchError`.

    A v1 position table whose token grid differs from the model's (another pre-training size) is
    resized bilinearly, with an info line; any other difference in keys or shapes is an error.
    """
    from ..backbones.pvt import resize_pos_embed
    expected = model.state_dict()
    out = OrderedDict(state_dict)
    for key, target in expected.items():
        value = out.get(key)
        if (key.endswith('pos_embed') and isinstance(value, Tensor) and value.dim() == 3
                and value.shape[-1] == target.shape[-1] and value.shape[1] != target.shape[1]
                and _is_square(value.shape[1])):
            stage = model.stages[int(key.split('.')[1])]
            side = math.isqrt(value.shape[1])
            out[key] = resize_pos_embed(value, (side, side), stage.pos_grid)
            print_log(f'PVT: resized {key} from a {side}x{side} grid to {stage.pos_grid}',
                      logger='current')
    missing = [k for k in expected if k not in out]
    unexpected = [k for k in out if k not in expected]
    mismatched = [k for k in expected if k in out and
                  (not isinstance(out[k], Tensor) or out[k].shape != expected[k].shape)]
    if missing or unexpected or mismatched:
        def listing(keys, show):
            return ', '.join(show(k) for k in keys[:8]) + (' ...' if len(keys) > 8 else '')
        family = getattr(model, 'family', type(model).__name__)
        lines = [f'The checkpoint does not fit this {family} (arch {arch_name(model)}):']
        if mismatched:
            lines.append(f'  {len(mismatched)} shape mismatches (checkpoint vs model): ' + listing(
                mismatched, lambda k: f'{k} {_shape(out[k])} vs {_shape(expected[k])}'))
        if missing:
            lines.append(f'  {len(missing)} keys missing from the checkpoint: '
                         + listing(missing, str))
        if unexpected:
            lines.append(f'  {len(unexpected)} unexpected keys in the checkpoint: '
                         + listing(unexpected, str))
        try:
            found = infer_arch(out, family)
            lines.append(f'  The checkpoint looks like {family} arch '
                         f'{found["name"] or found["arch"]}.')
        except (KeyError, ValueError, StopIteration):
            pass
        raise CheckpointMismatchError('\n'.join(lines))
    return out


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
            f'(no key {where}); it would keep its initial weights. Its first keys: '
            + ', '.join(list(state_dict)[:5]))
    sub: StateDict = OrderedDict((k[len(prefix):], state_dict[k]) for k in keys)
    layout, dropped = 'mmpvt', []
    if set(sub) != set(model.state_dict()):
        try:
            sub, found_family, layout, dropped = _convert(sub)
        except ValueError as e:
            raise CheckpointMismatchError(f'The weights {where}: {e}') from e
        check_family(model, found_family, layout, f'The state dict {where}')
    try:
        sub = check_state_dict(sub, model)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f'The weights {where}: {e}') from e
    if layout == 'mmpvt':  # keys already ours; shapes checked (and v1 tables resized)
        state_dict.update((prefix + k, v) for k, v in sub.items())
        return
    for k in keys:
        del state_dict[k]
    state_dict.update((prefix + k, v) for k, v in sub.items())
    print_log(f'{family}: converted the {len(sub)} tensors {where} from the {layout} layout'
              + (f'; dropped classification-only entries: {", ".join(dropped)}' if dropped
                 else ''), logger='current')


def load_checkpoint_file(filename: str, map_location: str = 'cpu') -> dict:
    """mmengine's CheckpointLoader (paths, URLs, ...) with errors that name the file and say what
    to do, instead of a bare URLError / zip-reader / unpickling message."""
    name = str(filename)
    try:
        return CheckpointLoader.load_checkpoint(name, map_location=map_location,
                                                logger='current')
    except FileNotFoundError as e:
        raise CheckpointReadError(f'Checkpoint file not found: {name} ({e})') from e
    except (URLError, ConnectionError, TimeoutError) as e:
        raise CheckpointReadError(
            f'Could not download the checkpoint {name}: {e}. If this machine is offline, download '
            'the file elsewhere, copy it here and set checkpoint= to its local path (downloads are '
            'cached in $TORCH_HOME/hub/checkpoints, ~/.cache/torch/hub/checkpoints by default).'
        ) from e
    except Exception as e:  # noqa: BLE001  truncated zip, text file, wrong pickle, ...
        raise CheckpointReadError(
            f'Could not read the checkpoint {name}: {type(e).__name__}: {e}. Expected a PyTorch '
            'checkpoint written by torch.save (is the file complete?).') from e


def read_checkpoint(filename: str, prefix: Optional[str] = None,
                    map_location: str = 'cpu') -> Tuple[StateDict, str, str, List[str]]:
    """Read a checkpoint of any known layout and convert it to mmpvt's.

    Returns (mmpvt state dict, family, layout, dropped classification-only entries).
    """
    sd = extract_state_dict(load_checkpoint_file(filename, map_location), prefix)
    try:
        return _convert(sd)
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
    converted, family, layout, dropped = read_checkpoint(filename, prefix, map_location)
    check_family(model, family, layout, str(filename))
    converted = check_state_dict(converted, model)
    model.load_state_dict(converted, strict=True)
    print_log(f'{model.family}: loaded {len(converted)} tensors ({layout} layout) from {filename}'
              + (f'; dropped classification-only entries: {", ".join(dropped)}' if dropped
                 else ''), logger='current')
    return layout, dropped


def _build_checked(converted: StateDict, family: str, layout: str, src: str,
                   arch: Optional[str]) -> Tuple[StateDict, str]:
    """Validate a converted backbone against a model of `arch` (or the arch its shapes imply)."""
    from ..backbones import PVT, PVTv2
    cls = PVT if family == 'PVT' else PVTv2
    if arch is not None and arch not in cls.arch_settings:
        raise CheckpointMismatchError(
            f'{src} is a {family} checkpoint ({layout} layout) but --arch {arch} is not a '
            f'{family} arch ({", ".join(cls.arch_settings)})')
    found = infer_arch(converted, family)
    model = cls(arch=arch if arch is not None else found['arch'])
    converted = check_state_dict(converted, model)
    model.load_state_dict(converted, strict=True)
    return converted, arch or found['name'] or found['arch']


def convert_checkpoint_file(src: str, dst: str, arch: Optional[str] = None,
                            backbone_only: bool = False) -> dict:
    """Convert a checkpoint file to mmpvt's layout and write it atomically to `dst`.

    A backbone checkpoint (official, mmdet, timm, transformers) is written as an mmpvt backbone
    state dict. A whole detector/segmentor (backbone under ``backbone.``, e.g. the authors'
    mmdet 2.13 / mmseg 0.13 releases) is written whole: the backbone converted, mmdet 2.x DETR
    keys renamed to 3.x (:mod:`.detr`), every other tensor and the ``meta`` kept, so that
    ``tools/test.py CONFIG OUT`` reads it like any mmpvt-trained checkpoint; `backbone_only` keeps
    only the backbone. The backbone is validated by loading it into a model of its family and of
    `arch` (or of the arch its shapes imply). Returns a summary dict.
    """
    from ...fileio import atomic_torch_save
    from ...version import __version__
    from .detr import is_mmdet2_detr, mmdet2_detr_to_mmdet3
    sd, meta = _unwrap(load_checkpoint_file(src))
    whole = (not any(is_backbone_key(k) for k in sd) and any(k.startswith('backbone.') for k in sd)
             and any(not k.startswith('backbone.') for k in sd))
    backbone = _backbone_part(sd, 'backbone.' if whole else None)
    try:
        converted, family, layout, dropped = _convert(backbone)
    except ValueError as e:  # neither family: name the file
        raise CheckpointMismatchError(f'{src}: {e}') from e
    converted, name = _build_checked(converted, family, layout, str(src), arch)
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
