"""PVT v1 checkpoint layouts and their conversion to mmpvt's.

* ``official``: the authors' whai362/PVT release (``patch_embed{i}``, ``pos_embed{i}``,
  ``block{i}.{j}``; stage-4 position table with a leading class-token row; ``cls_token``, ``norm``
  and ``head`` are classification-only).
* ``mmdet``: mmdet 3.x ``PyramidVisionTransformer`` (what ``mmdet.models.backbones.pvt.pvt_convert``
  writes: ``layers.{s}.0.projection``, ``layers.{s}.1.0.pos_embed``, ``layers.{s}.1.{j+1}``,
  q and kv fused into ``attn.attn.in_proj_*``, the MLP as 1x1 convolutions).
* ``mmpvt``: :class:`~mmpvt.models.PVT` (``stages.{s}.patch_embed``, ``stages.{s}.pos_embed``,
  ``stages.{s}.blocks.{j}``).
"""
import re
from collections import OrderedDict
from typing import List, Tuple

import torch

from ..archs import PVT_ARCH_KEYS, PVT_ARCHS
from .base import StateDict, drop_keys, is_square, mmdet_layers_to_mmpvt, stage_shapes

FAMILY = 'PVT'
# A key only a v1 checkpoint has: a position table, in any layout.
MARKER = re.compile(r'^(pos_embed\d+|layers\.\d+\.1\.0\.pos_embed|stages\.\d+\.pos_embed)$')
CLASSIFIER_KEYS = re.compile(r'^(cls_token|norm\.(weight|bias)|head\.(weight|bias))$')


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
            n = value.shape[1]
            if not is_square(n) and is_square(n - 1):  # row 0 is the class token's position
                value = value[:, 1:]
                dropped.append(f'{key}[:, 0] (class-token position)')
            out[f'stages.{int(m.group(1)) - 1}.pos_embed'] = value
            continue
        m = re.match(r'^(patch_embed|block)(\d+)\.(.*)$', key)
        if m:
            part = 'patch_embed' if m.group(1) == 'patch_embed' else 'blocks'
            out[f'stages.{int(m.group(2)) - 1}.{part}.{m.group(3)}'] = value
            continue
        out[key] = value  # unknown: reported as unexpected by check_state_dict
    return out, dropped


def mmdet_to_mmpvt(state_dict: StateDict) -> Tuple[StateDict, List[str]]:
    """mmdet 3.x ``PyramidVisionTransformer`` keys -> mmpvt keys. Block j sits at index j + 1,
    after the position-embedding module; the MLP is ``ffn.layers.{0,3}`` (fc1, fc2)."""
    return mmdet_layers_to_mmpvt(
        state_dict,
        layer_renames=(('attn.attn.out_proj.', 'attn.proj.'), ('ffn.layers.0.', 'mlp.fc1.'),
                       ('ffn.layers.3.', 'mlp.fc2.')),
        first_block=1, stage_keys=((r'^1\.0\.pos_embed$', 'pos_embed'), )), []


def mmpvt_to_mmpvt(state_dict: StateDict) -> Tuple[StateDict, List[str]]:
    return drop_keys(state_dict, CLASSIFIER_KEYS)


TO_MMPVT = dict(official=official_to_mmpvt, mmdet=mmdet_to_mmpvt, mmpvt=mmpvt_to_mmpvt)


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


def infer_arch(state_dict: StateDict) -> dict:
    """The PVT arch dict an mmpvt-layout state dict was made for, read off its shapes.

    num_heads changes no shape; it is taken as C / 64 (the head width of every official variant).
    Returns dict(arch=..., name='tiny'|'small'|...|None).
    """
    arch = {k: [] for k in PVT_ARCH_KEYS}
    for stage in stage_shapes(state_dict):
        dim = stage['dim']
        arch['embed_dims'].append(dim)
        arch['depths'].append(stage['depth'])
        arch['num_heads'].append(max(dim // 64, 1) if dim % 64 == 0 else 1)
        arch['mlp_ratios'].append(stage['hidden'] // dim)
        arch['sr_ratios'].append(stage['sr_kernel'] or 1)
        arch['patch_sizes'].append(stage['patch_kernel'])
    name = next((n for n, a in PVT_ARCHS.items()
                 if all(list(a[k]) == arch[k] for k in arch)), None)
    return dict(arch=arch, name=name)
