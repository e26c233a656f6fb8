"""Checkpoint layouts for PVT v1 and their conversion to mmpvt's.

Three layouts are recognised automatically from the key names:

* ``official``: the authors' whai362/PVT release (``patch_embed{i}``, ``pos_embed{i}``,
  ``block{i}.{j}``; stage-4 position table with a leading class-token row; ``cls_token``, ``norm``
  and ``head`` are classification-only).
* ``mmdet``: mmdet 3.x ``PyramidVisionTransformer`` (what ``mmdet.models.backbones.pvt.pvt_convert``
  writes: ``layers.{s}.0.projection``, ``layers.{s}.1.0.pos_embed``, ``layers.{s}.1.{j+1}``,
  q and kv fused into ``attn.attn.in_proj_*``, the MLP as 1x1 convolutions).
* ``mmpvt``: this package's ``PVT`` (``stages.{s}.patch_embed``, ``stages.{s}.pos_embed``,
  ``stages.{s}.blocks.{j}``).

Any of them may be wrapped in a training checkpoint (``state_dict``/``model``/``module``) and may
carry a ``backbone.`` prefix (a whole detector or segmentor). Loading never ignores anything
silently: classification-only entries are dropped with one info line, and every other key must
match the model's keys and shapes, else a :class:`CheckpointMismatchError` names them.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

from ..fileio import atomic_torch_save
from ..version import __version__
from .pvt import ARCH_SETTINGS, PVT, resize_pos_embed

StateDict = Dict[str, Tensor]

_LAYOUT_PATTERNS = OrderedDict(
    official=re.compile(r'^(patch_embed\d+\.|pos_embed\d+$|block\d+\.\d+\.)'),
    mmdet=re.compile(r'^layers\.\d+\.\d+\.'),
    mmpvt=re.compile(r'^stages\.\d+\.'),
)
CLASSIFIER_KEYS = re.compile(r'^(cls_token|norm\.(weight|bias)|head\.(weight|bias))$')


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model: missing/unexpected keys or different shapes."""


def detect_layout(state_dict: StateDict) -> str:
    """'official', 'mmdet' or 'mmpvt', from the key names; ValueError if none fits."""
    counts = {name: sum(bool(p.match(k)) for k in state_dict)
              for name, p in _LAYOUT_PATTERNS.items()}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        sample = ', '.join(list(state_dict)[:5])
        raise ValueError('Not a PVT v1 checkpoint: expected keys like "patch_embed1.proj.weight" '
                         '(official), "layers.0.0.projection.weight" (mmdet) or '
                         f'"stages.0.patch_embed.proj.weight" (mmpvt); got {sample} ...')
    return best


def extract_state_dict(checkpoint: dict, prefix: Optional[str] = None) -> StateDict:
    """The backbone's tensors from a loaded checkpoint object.

    Unwraps ``state_dict``/``model``/``module`` containers and a DDP ``module.`` prefix. With
    `prefix` (e.g. ``'backbone.'``) only keys under it are kept, prefix removed; without it a
    ``backbone.`` prefix is stripped automatically when no top-level key is a PVT key.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f'A checkpoint must be a dict of tensors, got {type(checkpoint).__name__}')
    sd = checkpoint
    for wrapper in ('state_dict', 'model', 'module'):
        if isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
            break
    if sd and all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    if prefix is None and not any(p.match(k) for k in sd for p in _LAYOUT_PATTERNS.values()):
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


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


def official_to_mmpvt(state_dict: StateDict) -> Tuple[StateDict, List[str]]:
    """Official whai362/PVT keys -> mmpvt keys. Returns (converted, dropped classifier entries)."""
    out: StateDict = OrderedDict()
    dropped: List[str] = []
    for key, value in state_dict.items():
        if CLASSIFIER_KEYS.match(key):
            dropped.append(key)
            continue
        m = re.match(r'^pos_embed(\d+)$', key)
        if m:
            stage = int(m.group(1)) - 1
            n = value.shape[1]
            if not _is_square(n) and _is_square(n - 1):  # row 0 is the class token's position
                value = value[:, 1:]
                dropped.append(f'{key}[:, 0] (class-token position)')
            out[f'stages.{stage}.pos_embed'] = value
            continue
        m = re.match(r'^patch_embed(\d+)\.(.*)$', key)
        if m:
            out[f'stages.{int(m.group(1)) - 1}.patch_embed.{m.group(2)}'] = value
            continue
        m = re.match(r'^block(\d+)\.(\d+)\.(.*)$', key)
        if m:
            out[f'stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.{m.group(3)}'] = value
            continue
        out[key] = value  # unknown: reported as unexpected by check_state_dict
    return out, dropped


_MMDET_BLOCK_RENAMES = (
    ('attn.attn.out_proj.', 'attn.proj.'),
    ('ffn.layers.0.', 'mlp.fc1.'),
    ('ffn.layers.3.', 'mlp.fc2.'),
)


def mmdet_to_mmpvt(state_dict: StateDict) -> Tuple[StateDict, List[str]]:
    """mmdet 3.x ``PyramidVisionTransformer`` keys -> mmpvt keys (splits in_proj into q and kv)."""
    has_pos = any(re.match(r'^layers\.\d+\.1\.0\.pos_embed$', k) for k in state_dict)
    out: StateDict = OrderedDict()
    for key, value in state_dict.items():
        m = re.match(r'^layers\.(\d+)\.0\.(projection|norm)\.(.*)$', key)
        if m:
            name = 'proj' if m.group(2) == 'projection' else 'norm'
            out[f'stages.{m.group(1)}.patch_embed.{name}.{m.group(3)}'] = value
            continue
        m = re.match(r'^layers\.(\d+)\.1\.0\.pos_embed$', key)
        if m:
            out[f'stages.{m.group(1)}.pos_embed'] = value
            continue
        m = re.match(r'^layers\.(\d+)\.1\.(\d+)\.(.*)$', key)
        if m:
            stage, block, rest = m.group(1), int(m.group(2)) - has_pos, m.group(3)
            prefix = f'stages.{stage}.blocks.{block}.'
            if rest.startswith('attn.attn.in_proj_'):  # rows: q, then k, then v
                kind = rest[len('attn.attn.in_proj_'):]
                dim = value.shape[0] // 3
                out[f'{prefix}attn.q.{kind}'] = value[:dim]
                out[f'{prefix}attn.kv.{kind}'] = value[dim:]
                continue
            for old, new in _MMDET_BLOCK_RENAMES:
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    if rest.endswith('weight') and value.dim() == 4:  # 1x1 conv -> linear
                        value = value.flatten(1)
                    break
            out[prefix + rest] = value
            continue
        out[key] = value  # e.g. a PVTv2 per-stage norm: reported as unexpected
    return out, []


def mmpvt_to_official(state_dict: StateDict) -> StateDict:
    """mmpvt keys -> the official layout (backbone only; no cls_token/norm/head).

    The last stage's position table gets back its class-token row (zeros), so mmdet's
    ``pvt_convert`` and the official code read it as they read a release checkpoint.
    """
    out: StateDict = OrderedDict()
    last = max(int(k.split('.')[1]) for k in state_dict if k.startswith('stages.'))
    for key, value in state_dict.items():
        m = re.match(r'^stages\.(\d+)\.(patch_embed\.|pos_embed$|blocks\.)(.*)$', key)
        if not m:
            raise KeyError(f'not an mmpvt PVT key: {key}')
        stage, part, rest = int(m.group(1)), m.group(2), m.group(3)
        if part == 'pos_embed':
            if stage == last:
                value = torch.cat([value.new_zeros(1, 1, value.shape[-1]), value], dim=1)
            out[f'pos_embed{stage + 1}'] = value
        elif part == 'patch_embed.':
            out[f'patch_embed{stage + 1}.{rest}'] = value
        else:
            out[f'block{stage + 1}.{rest}'] = value
    return out


def convert_to_mmpvt(state_dict: StateDict) -> Tuple[StateDict, str, List[str]]:
    """Any known layout -> (mmpvt state dict, detected layout, dropped classifier entries)."""
    layout = detect_layout(state_dict)
    if layout == 'official':
        converted, dropped = official_to_mmpvt(state_dict)
    elif layout == 'mmdet':
        converted, dropped = mmdet_to_mmpvt(state_dict)
    else:
        converted = OrderedDict((k, v) for k, v in state_dict.items()
                                if not CLASSIFIER_KEYS.match(k))
        dropped = [k for k in state_dict if CLASSIFIER_KEYS.match(k)]
    return converted, layout, dropped


def infer_arch(state_dict: StateDict) -> dict:
    """The PVT arch dict that an mmpvt-layout state dict was made for, read off its shapes.

    num_heads does not change any shape; it is taken as C / 64 (the head width of every official
    variant). Returns dict(arch=..., name='tiny'|'small'|...|None).
    """
    stages = sorted({int(m.group(1)) for k in state_dict
                     for m in [re.match(r'^stages\.(\d+)\.', k)] if m})
    arch = {k: [] for k in ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios',
                            'patch_sizes')}
    for s in stages:
        proj = state_dict[f'stages.{s}.patch_embed.proj.weight']
        dim = proj.shape[0]
        blocks = {int(m.group(1)) for k in state_dict
                  for m in [re.match(rf'^stages\.{s}\.blocks\.(\d+)\.', k)] if m}
        fc1 = state_dict[f'stages.{s}.blocks.0.mlp.fc1.weight']
        sr = state_dict.get(f'stages.{s}.blocks.0.attn.sr.weight')
        arch['embed_dims'].append(dim)
        arch['depths'].append(max(blocks) + 1)
        arch['num_heads'].append(max(dim // 64, 1) if dim % 64 == 0 else 1)
        arch['mlp_ratios'].append(fc1.shape[0] // dim)
        arch['sr_ratios'].append(1 if sr is None else sr.shape[-1])
        arch['patch_sizes'].append(proj.shape[-1])
    name = next((n for n, a in ARCH_SETTINGS.items()
                 if all(list(a[k]) == arch[k] for k in arch)), None)
    return dict(arch=arch, name=name)


def _shape(t) -> str:
    return 'x'.join(map(str, t.shape)) if isinstance(t, Tensor) else type(t).__name__


def check_state_dict(state_dict: StateDict, model: nn.Module) -> StateDict:
    """Match a converted state dict to `model`, or raise :class:`CheckpointMismatchError`.

    A position table whose token grid differs from the model's (another pre-training size) is
    resized bilinearly, with an info line; any other difference in keys or shapes is an error.
    """
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
        lines = ['The checkpoint does not fit this PVT:']
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
            found = infer_arch(out)
            lines.append(f'  The checkpoint looks like arch {found["name"] or found["arch"]}.')
        except (KeyError, ValueError):
            pass
        raise CheckpointMismatchError('\n'.join(lines))
    return out


def read_pvt_checkpoint(filename: str, prefix: Optional[str] = None,
                        map_location: str = 'cpu') -> Tuple[StateDict, str, List[str]]:
    """Read a checkpoint of any known layout (file, URL, ...) and convert it to mmpvt's.

    Returns (mmpvt state dict, detected layout, dropped classification-only entries).
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location=map_location,
                                                  logger='current')
    return convert_to_mmpvt(extract_state_dict(checkpoint, prefix))


def load_pvt_checkpoint(model: nn.Module, filename: str, prefix: Optional[str] = None,
                        map_location: str = 'cpu') -> Tuple[str, List[str]]:
    """Load a PVT checkpoint of any known layout (file, URL, ...) into `model`, strictly.

    Returns (detected layout, dropped classification-only entries).
    """
    converted, layout, dropped = read_pvt_checkpoint(filename, prefix, map_location)
    converted = check_state_dict(converted, model)
    model.load_state_dict(converted, strict=True)
    print_log(f'PVT: loaded {len(converted)} tensors ({layout} layout) from {filename}'
              + (f'; dropped classification-only entries: {", ".join(dropped)}' if dropped
                 else ''), logger='current')
    return layout, dropped


def convert_checkpoint_file(src: str, dst: str, arch: Optional[str] = None) -> dict:
    """Convert a checkpoint file to mmpvt's layout and write it atomically to `dst`.

    The result is validated by loading it into a PVT of `arch` (or of the arch its shapes imply).
    Returns a summary dict (layout, arch, number of tensors, dropped entries).
    """
    converted, layout, dropped = read_pvt_checkpoint(src)
    found = infer_arch(converted)
    model = PVT(arch=arch if arch is not None else found['arch'])
    converted = check_state_dict(converted, model)
    model.load_state_dict(converted, strict=True)
    atomic_torch_save({'state_dict': converted,
                       'meta': dict(mmpvt_version=__version__, source=str(src),
                                    source_layout=layout, arch=arch or found['name'] or 'custom')},
                      dst)
    return dict(layout=layout, arch=arch or found['name'] or found['arch'],
                num_tensors=len(converted), dropped=dropped)
