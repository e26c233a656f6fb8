"""Checkpoint layouts: the renaming pieces every family's layouts are written with, and the one
conversion entry (:func:`convert_to_mmpvt`) that tells a checkpoint's family and layout apart and
converts it to the encoder's own names. Plain PyTorch.

A checkpoint is identified from its key names alone: its *family* by the family's ``marker`` (a
v1 one has position tables, a v2 one depth-wise convs in the feed-forward and per-stage norms) and
its *layout* by the signatures of that family's layouts (official, mmdet, timm, transformers,
mmpvt; see each family module). Any of them may be wrapped in a training checkpoint
(``state_dict``/``model``/``module``) and carry a ``backbone.`` prefix (a whole detector or
segmentor).

An ImageNet classifier of another layout (the authors', timm's, transformers') converts either to
a backbone (:func:`convert_to_mmpvt`, classification entries dropped) or whole, to the names of an
mmpretrain ``ImageClassifier`` holding our backbone (:func:`convert_classifier`: ``backbone.*``
and the linear head as ``head.fc.*``).
"""
import math
import re
from collections import OrderedDict
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from .common import FAMILIES, Converter, Layout, StateDict, log


def layout(table: Dict[str, Layout], name: str, signature: str, example: str,
           layer_norm_eps: Optional[float] = None):
    """Decorator: the decorated converter (``(state_dict, classifier=False) -> (mmpvt-layout
    state dict, dropped entries)``) becomes layout `name` of a family's `table`, recognised by
    keys matching `signature` (keys only this layout has, within its family); `example` is one
    of its keys, for messages; `layer_norm_eps` as :class:`~.common.Layout` has it."""

    def add(converter: Converter) -> Converter:
        table[name] = Layout(re.compile(signature), converter, example, layer_norm_eps)
        return converter

    return add


def rename_keys(state_dict: StateDict, renames: Tuple[Tuple[str, str], ...]) -> StateDict:
    """Every key with each (pattern, template) of `renames` applied in turn (``re.sub``): a match
    becomes the template formatted with the match's named groups, where a 1-based stage number
    ``s1`` (the authors' ``block1``) also gives ``s0``, mmpvt's 0-based one."""

    def substitute(template):

        def fill(m):
            groups = m.groupdict()
            if 's1' in groups:
                groups['s0'] = int(groups['s1']) - 1
            return template.format(**groups)

        return fill

    out: StateDict = OrderedDict()
    for key, value in state_dict.items():
        for pattern, template in renames:
            key = re.sub(pattern, substitute(template), key)
        out[key] = value
    return out


def drop_keys(state_dict: StateDict, pattern: 're.Pattern') -> Tuple[StateDict, List[str]]:
    """(the entries whose key does not match `pattern`, the keys that do)."""
    dropped = [k for k in state_dict if pattern.match(k)]
    return OrderedDict((k, v) for k, v in state_dict.items() if k not in dropped), dropped


def split_stage_keys(state_dict: StateDict, pattern: str,
                     unmatched: StateDict) -> Iterator[Tuple[str, str, str, Tensor]]:
    """(key, stage, rest, value) for each key `pattern` (groups: stage index, rest) matches; the
    other entries are copied into `unmatched` unchanged, so check_state_dict reports them."""
    for key, value in state_dict.items():
        m = re.match(pattern, key)
        if m:
            yield key, m.group(1), m.group(2), value
        else:
            unmatched[key] = value


def stage_shapes(state_dict: StateDict) -> List[dict]:
    """Per stage of an mmpvt-layout state dict, what its shapes say: ``dim`` (width), ``depth``
    (blocks), ``hidden`` (feed-forward width of block 0), ``sr_kernel`` (K/V reduction kernel of
    block 0; None without one) and ``patch_kernel``."""
    stages = sorted(
        {int(m.group(1))
         for k in state_dict
         for m in [re.match(r'^stages\.(\d+)\.', k)] if m})
    shapes = []
    for s in stages:
        proj = state_dict[f'stages.{s}.patch_embed.proj.weight']
        blocks = {
            int(m.group(1))
            for k in state_dict
            for m in [re.match(rf'^stages\.{s}\.blocks\.(\d+)\.', k)] if m
        }
        sr = state_dict.get(f'stages.{s}.blocks.0.attn.sr.weight')
        shapes.append(
            dict(dim=proj.shape[0], depth=max(blocks) + 1,
                 hidden=state_dict[f'stages.{s}.blocks.0.mlp.fc1.weight'].shape[0],
                 sr_kernel=None if sr is None else sr.shape[-1], patch_kernel=proj.shape[-1]))
    return shapes


def rename_prefix(name: str, renames: Tuple[Tuple[str, str], ...]) -> str:
    """`name` with the first (old prefix, new prefix) pair of `renames` that fits applied."""
    for old, new in renames:
        if name.startswith(old):
            return new + name[len(old):]
    return name


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
    for key, stage, rest, value in split_stage_keys(state_dict, r'^layers\.(\d+)\.(.*)$', out):
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
        rest = rename_prefix(rest, layer_renames)
        if rest.startswith('mlp.fc') and rest.endswith('weight') and value.dim() == 4:
            value = value.flatten(1)  # fc1/fc2 stored as 1x1 convolutions
        out[prefix + rest] = value
    return out


def key_listing(keys: List[str], show=str, most: int = 8) -> str:
    """The first `most` of `keys` as `show` writes each, comma-separated; '...' if there are
    more."""
    return ', '.join(show(k) for k in keys[:most]) + (' ...' if len(keys) > most else '')


# transformers' names inside a layer that both families share (the attention's differ).
HF_BLOCK_RENAMES = (
    ('layer_norm_1.', 'norm1.'),
    ('layer_norm_2.', 'norm2.'),
    ('mlp.dense1.', 'mlp.fc1.'),
    ('mlp.dense2.', 'mlp.fc2.'),
)


def stack_key_value(parts: Dict[str, Dict[str, Tensor]], out: StateDict, separate: str) -> None:
    """transformers' separate key and value projections -> ``attn.kv`` (rows K then V), into
    `out`. `parts`: {mmpvt ``...attn.kv.{weight,bias}`` key: {'key': t, 'value': t}};
    `separate`: the file's prefix of the halves (e.g. ``'attention.'``), so that half a pair is
    kept under its own name and reported as unexpected, not dropped."""
    for key, halves in parts.items():
        if set(halves) != {'key', 'value'}:
            name = next(iter(halves))
            out[key.replace('attn.kv.', f'{separate}{name}.')] = halves[name]
            continue
        out[key] = torch.cat([halves['key'], halves['value']], dim=0)


def without_class_row(key: str, value: Tensor, dropped: List[str]) -> Tensor:
    """A v1 position table with 1 + h*w rows (the classifier's last stage) without its first,
    the class token's position (named in `dropped`); any other table unchanged."""
    n = value.shape[1]
    if not is_square(n) and is_square(n - 1):
        dropped.append(f'{key}[:, 0] (class-token position)')
        return value[:, 1:]
    return value


def shape_text(t) -> str:
    """'64x3x4x4' for a tensor, the type's name for anything else (in mismatch messages)."""
    return 'x'.join(map(str, t.shape)) if isinstance(t, Tensor) else type(t).__name__


def is_square(n: int) -> bool:
    """Whether n > 0 tokens form a square grid (a v1 position table without its class row)."""
    return n > 0 and math.isqrt(n)**2 == n


class Conversion(NamedTuple):
    """A state dict in mmpvt's layout (a backbone's, or a whole classifier's) and where it came
    from."""
    state_dict: StateDict
    family: str  # a registered family's name: 'PVT' | 'PVTv2'
    layout: str  # 'official' | 'mmdet' | 'timm' | 'transformers' | 'mmpvt'
    dropped: List[str]  # classification-only entries left out


def is_backbone_key(key: str) -> bool:
    """Whether `key` is typical of some family's checkpoint layout (at the top level)."""
    return any(
        layout.signature.match(key) for f in FAMILIES.values() for layout in f.layouts.values())


def _examples() -> str:
    return '; '.join(f'{f.name}: ' + ', '.join(f'"{layout.example}" ({name})'
                                               for name, layout in f.layouts.items())
                     for f in FAMILIES.values())


def identify(state_dict: StateDict) -> Tuple[str, str]:
    """(family, layout) of a backbone state dict: the one registered family whose marker its keys
    show, and that family's layout whose signature the most keys match; ValueError naming
    example keys if it is no family's (or shows the markers of several)."""
    sample = ', '.join(list(state_dict)[:5])
    found = [f for f in FAMILIES.values() if any(f.marker.search(k) for k in state_dict)]
    if len(found) > 1:
        raise ValueError(f'The checkpoint has keys of several families '
                         f'({", ".join(f.name for f in found)}); got {sample} ...')
    counts = {} if not found else {
        name: sum(bool(layout.signature.match(k)) for k in state_dict)
        for name, layout in found[0].layouts.items()
    }
    if not found or not any(counts.values()):
        raise ValueError(f'Not a {" or ".join(FAMILIES)} checkpoint: expected keys like '
                         f'{_examples()}; got {sample} ...')
    return found[0].name, max(counts, key=counts.get)


def module_metadata(state_dict: StateDict) -> 'OrderedDict[str, dict]':
    """The per-module metadata torch keeps on a state dict (its ``_metadata``: BatchNorm's
    version, a recorded LayerNorm eps), by module path, DDP's ``module`` prefix removed as
    :func:`unwrap` removes it from the keys; empty where the state dict has none."""
    return OrderedDict((re.sub(r'^module(\.|$)', '', path), entry)
                       for path, entry in (getattr(state_dict, '_metadata', None) or {}).items())


def unwrap(checkpoint: dict) -> Tuple[StateDict, dict]:
    """(state dict, meta) of a loaded checkpoint object; DDP ``module.`` prefix removed. The state
    dict keeps torch's per-module metadata (:func:`module_metadata`)."""
    if not isinstance(checkpoint, dict):
        raise TypeError(f'A checkpoint must be a dict of tensors, got {type(checkpoint).__name__}')
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
    sd = checkpoint
    for wrapper in ('state_dict', 'model', 'module'):
        if isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
            break
    metadata = module_metadata(sd)
    if sd and all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    out = OrderedDict(sd)
    out._metadata = metadata
    return out, dict(meta)


def extract_state_dict(checkpoint: dict, prefix: Optional[str] = None) -> StateDict:
    """The backbone's tensors from a loaded checkpoint object.

    Unwraps ``state_dict``/``model``/``module`` containers and a DDP ``module.`` prefix. With
    `prefix` (e.g. ``'backbone.'``) only keys under it are kept, prefix removed; without it a
    ``backbone.`` prefix is stripped automatically when no top-level key is a backbone key.
    """
    return backbone_part(unwrap(checkpoint)[0], prefix)


def backbone_part(sd: StateDict, prefix: Optional[str]) -> StateDict:
    """extract_state_dict on an already unwrapped state dict."""
    if prefix is None and not any(is_backbone_key(k) for k in sd):
        if any(k.startswith('backbone.') for k in sd):
            prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        picked = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not picked:
            raise ValueError(f'No key in the checkpoint starts with prefix {prefix!r}')
        log.info(f'mmpvt: took {len(picked)} tensors under {prefix!r} (the rest of the model, '
                 f'{len(sd) - len(picked)} tensors, is not the backbone\'s)')
        sd = picked
    return OrderedDict(sd)


def convert_to_mmpvt(state_dict: StateDict, classifier: bool = False) -> Conversion:
    """Any known layout of either family -> mmpvt's (ValueError naming example keys if it is
    neither family, the first entry that is not a tensor, or the tensors holding NaN or
    infinite values, each under its key as given: a conversion may merge or split tensors).

    classifier: False (a backbone for dense prediction): the classification-only entries are
    dropped (named in ``dropped``). True: they are kept in mmpvt's names: a v1 classifier's
    ``cls_token``, final ``norm`` and the class token's row of the last position table, and the
    linear head of either family as ``head.weight``/``head.bias``.
    """
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise ValueError(f'the state dict entry {key!r} holds a {type(value).__name__} '
                             f'({str(value)[:40]!r}), expected a tensor')
    non_finite = {
        key: int((~torch.isfinite(value)).sum())
        for key, value in state_dict.items()
        if value.is_floating_point() and not value.is_meta  # (shapes only)
        and not torch.isfinite(value).all()
    }
    if non_finite:
        raise ValueError(f'{len(non_finite)} tensors with NaN or infinite values: ' + key_listing(
            list(non_finite), lambda k: f'{k} ({non_finite[k]} of '
            f'{state_dict[k].numel()} values)'))
    family, layout = identify(state_dict)
    to_mmpvt = FAMILIES[family].layouts[layout].to_mmpvt
    converted, dropped = to_mmpvt(state_dict, classifier=classifier)
    return Conversion(converted, family, layout, dropped)


# The linear head of an mmpretrain ImageClassifier (LinearClsHead's layer ``fc``).
CLASSIFIER_HEAD = 'head.fc.'
HEAD_KEY = re.compile(r'^head\.(weight|bias)$')


def convert_classifier(state_dict: StateDict) -> Conversion:
    """A whole ImageNet classifier of any known layout -> the state dict of an mmpretrain
    ``ImageClassifier`` with our backbone: ``backbone.<mmpvt key>`` and ``head.fc.{weight,bias}``
    (dropped: nothing)."""
    converted = convert_to_mmpvt(state_dict, classifier=True)
    out: StateDict = OrderedDict(
        (CLASSIFIER_HEAD + k[len('head.'):] if HEAD_KEY.match(k) else 'backbone.' + k, v)
        for k, v in converted.state_dict.items())
    return converted._replace(state_dict=out)


def infer_arch(state_dict: StateDict, family: str) -> dict:
    """dict(arch=..., name=...) of the `family` model an mmpvt-layout state dict fits."""
    return FAMILIES[family].infer_arch(state_dict)
