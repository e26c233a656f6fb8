"""What every checkpoint layout module shares: the state-dict type, the two errors, and the
renaming steps common to mmdet's ports of PVT v1 and PVTv2.

Nothing here knows a family; :mod:`.pvt_v1` and :mod:`.pvt_v2` describe their layouts with these
pieces, :mod:`.convert` tells layouts apart, :mod:`.loading` loads.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, Iterator, List, Tuple

import torch
from torch import Tensor

StateDict = Dict[str, Tensor]


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model: another family, missing/unexpected keys, shapes."""


class CheckpointReadError(ValueError):
    """The checkpoint could not be read (missing, truncated, not a PyTorch file, download
    failed)."""


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
    stages = sorted({int(m.group(1)) for k in state_dict
                     for m in [re.match(r'^stages\.(\d+)\.', k)] if m})
    shapes = []
    for s in stages:
        proj = state_dict[f'stages.{s}.patch_embed.proj.weight']
        blocks = {int(m.group(1)) for k in state_dict
                  for m in [re.match(rf'^stages\.{s}\.blocks\.(\d+)\.', k)] if m}
        sr = state_dict.get(f'stages.{s}.blocks.0.attn.sr.weight')
        shapes.append(dict(dim=proj.shape[0], depth=max(blocks) + 1,
                           hidden=state_dict[f'stages.{s}.blocks.0.mlp.fc1.weight'].shape[0],
                           sr_kernel=None if sr is None else sr.shape[-1],
                           patch_kernel=proj.shape[-1]))
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


def stack_key_value(parts: Dict[str, Dict[str, Tensor]], out: StateDict,
                    separate: str) -> None:
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
    return n > 0 and math.isqrt(n) ** 2 == n
