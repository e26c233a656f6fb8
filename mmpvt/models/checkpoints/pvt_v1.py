"""PVT v1 checkpoint layouts and their conversion to mmpvt's.

* ``official``: the authors' whai362/PVT release (``patch_embed{i}``, ``pos_embed{i}``,
  ``block{i}.{j}``; stage-4 position table with a leading class-token row; ``cls_token``, ``norm``
  and ``head`` are classification-only).
* ``mmdet``: mmdet 3.x ``PyramidVisionTransformer`` (what ``mmdet.models.backbones.pvt.pvt_convert``
  writes: ``layers.{s}.0.projection``, ``layers.{s}.1.0.pos_embed``, ``layers.{s}.1.{j+1}``,
  q and kv fused into ``attn.attn.in_proj_*``, the MLP as 1x1 convolutions).
* ``transformers``: ``PvtForImageClassification`` (prefix ``pvt.``, head ``classifier``) or
  ``PvtModel`` (no prefix): ``encoder.patch_embeddings.{s}.{projection,layer_norm,
  position_embeddings}`` (the class token is ``encoder.patch_embeddings.3.cls_token``),
  ``encoder.block.{s}.{j}`` with separate query/key/value, ``encoder.layer_norm`` (final norm).
* ``mmpvt``: :class:`~mmpvt.models.PVT` (``stages.{s}.patch_embed``, ``stages.{s}.pos_embed``,
  ``stages.{s}.blocks.{j}``; a classifier's body also ``cls_token`` and ``norm``).

Every converter takes ``classifier``: False (a backbone for dense prediction) drops the
classification-only entries, named as in the file; True keeps them under mmpvt's names
(``cls_token``, ``norm.*``, the full last position table, the head as ``head.*``).
"""
import re
from collections import OrderedDict
from typing import Iterable, List, Tuple

import torch
from torch import Tensor

from ..archs import PVT_ARCH_KEYS, PVT_ARCHS
from .base import (HF_BLOCK_RENAMES, StateDict, is_square, mmdet_layers_to_mmpvt, rename_prefix,
                   stack_key_value, stage_shapes, without_class_row)

FAMILY = 'PVT'
# A key only a v1 checkpoint has: a position table, in any layout.
MARKER = re.compile(r'^(pos_embed\d+|layers\.\d+\.1\.0\.pos_embed|stages\.\d+\.pos_embed'
                    r'|(pvt\.)?encoder\.patch_embeddings\.\d+\.position_embeddings)$')
# The classification-only entries, in the official and in mmpvt's names.
CLASSIFIER_KEYS = re.compile(r'^(cls_token|norm\.(weight|bias)|head\.(weight|bias))$')
_POS_TABLE = re.compile(r'^stages\.\d+\.pos_embed$')


def _fit(renamed: Iterable[Tuple[str, str, Tensor]], classifier: bool
         ) -> Tuple[StateDict, List[str]]:
    """(file key, mmpvt key, tensor) triples in file order -> (state dict, dropped entries).

    Without `classifier` the class token, final norm and head are dropped, and so is the class
    token's row of a position table; `dropped` names them as the file does."""
    out: StateDict = OrderedDict()
    dropped: List[str] = []
    for source, key, value in renamed:
        if not classifier:
            if CLASSIFIER_KEYS.match(key):
                dropped.append(source)
                continue
            if _POS_TABLE.match(key):
                value = without_class_row(source, value, dropped)
        out[key] = value
    return out, dropped


def official_to_mmpvt(state_dict: StateDict, classifier: bool = False
                      ) -> Tuple[StateDict, List[str]]:
    """Official whai362/PVT keys -> mmpvt keys. Returns (converted, dropped classifier entries)."""
    def renamed():
        for key, value in state_dict.items():
            m = re.match(r'^pos_embed(\d+)$', key)
            if m:
                yield key, f'stages.{int(m.group(1)) - 1}.pos_embed', value
                continue
            m = re.match(r'^(patch_embed|block)(\d+)\.(.*)$', key)
            if m:
                part = 'patch_embed' if m.group(1) == 'patch_embed' else 'blocks'
                yield key, f'stages.{int(m.group(2)) - 1}.{part}.{m.group(3)}', value
                continue
            yield key, key, value  # cls_token, norm, head; unknown: reported by check_state_dict
    return _fit(renamed(), classifier)


def mmdet_to_mmpvt(state_dict: StateDict, classifier: bool = False
                   ) -> Tuple[StateDict, List[str]]:
    """mmdet 3.x ``PyramidVisionTransformer`` keys -> mmpvt keys. Block j sits at index j + 1,
    after the position-embedding module; the MLP is ``ffn.layers.{0,3}`` (fc1, fc2). (mmdet's
    backbone has no classification entries, whatever `classifier` says.)"""
    return mmdet_layers_to_mmpvt(
        state_dict,
        layer_renames=(('attn.attn.out_proj.', 'attn.proj.'), ('ffn.layers.0.', 'mlp.fc1.'),
                       ('ffn.layers.3.', 'mlp.fc2.')),
        first_block=1, stage_keys=((r'^1\.0\.pos_embed$', 'pos_embed'), )), []


_HF_EMBED_RENAMES = (('projection.', 'patch_embed.proj.'), ('layer_norm.', 'patch_embed.norm.'))
_HF_LAYER_RENAMES = (
    ('attention.self.query.', 'attn.q.'),
    ('attention.self.sequence_reduction.', 'attn.sr.'),
    ('attention.self.layer_norm.', 'attn.norm.'),
    ('attention.output.dense.', 'attn.proj.'),
) + HF_BLOCK_RENAMES


def transformers_to_mmpvt(state_dict: StateDict, classifier: bool = False
                          ) -> Tuple[StateDict, List[str]]:
    """transformers ``PvtForImageClassification`` / ``PvtModel`` keys -> mmpvt keys (separate
    key and value projections stacked into ``kv``, K first)."""
    kv_parts = {}

    def renamed():
        for key, value in state_dict.items():
            m = re.match(r'^(?:pvt\.)?encoder\.(patch_embeddings|block)\.(\d+)\.(.*)$', key)
            rest = m.group(3) if m else ''
            if m and m.group(1) == 'patch_embeddings':
                stage = f'stages.{m.group(2)}.'
                if rest == 'position_embeddings':
                    yield key, stage + 'pos_embed', value
                elif rest == 'cls_token':
                    yield key, 'cls_token', value
                else:
                    yield key, stage + rename_prefix(rest, _HF_EMBED_RENAMES), value
            elif m:
                block, rest = rest.split('.', 1) if '.' in rest else (rest, '')
                prefix = f'stages.{m.group(2)}.blocks.{block}.'
                kv = re.match(r'^attention\.self\.(key|value)\.(weight|bias)$', rest)
                if kv:
                    kv_parts.setdefault(prefix + 'attn.kv.' + kv.group(2), {})[kv.group(1)] = value
                else:
                    yield key, prefix + rename_prefix(rest, _HF_LAYER_RENAMES), value
            else:
                yield key, rename_prefix(key, (('pvt.encoder.layer_norm.', 'norm.'),
                                               ('encoder.layer_norm.', 'norm.'),
                                               ('classifier.', 'head.'))), value
        stacked: StateDict = OrderedDict()
        stack_key_value(kv_parts, stacked, 'attention.self.')
        for key, value in stacked.items():
            yield key, key, value
    return _fit(renamed(), classifier)


def mmpvt_to_mmpvt(state_dict: StateDict, classifier: bool = False
                   ) -> Tuple[StateDict, List[str]]:
    return _fit(((k, k, v) for k, v in state_dict.items()), classifier)


TO_MMPVT = dict(official=official_to_mmpvt, mmdet=mmdet_to_mmpvt,
                transformers=transformers_to_mmpvt, mmpvt=mmpvt_to_mmpvt)


def mmpvt_to_official(state_dict: StateDict) -> StateDict:
    """mmpvt keys -> the official layout (a classifier's cls_token/norm/head keep their names).

    A backbone's last position table gets back its class-token row (zeros), so mmdet's
    ``pvt_convert`` and the official code read it as they read a release checkpoint.
    """
    out: StateDict = OrderedDict()
    last = max(int(k.split('.')[1]) for k in state_dict if k.startswith('stages.'))
    for key, value in state_dict.items():
        if CLASSIFIER_KEYS.match(key):
            out[key] = value
            continue
        m = re.match(r'^stages\.(\d+)\.(patch_embed\.|pos_embed$|blocks\.)(.*)$', key)
        if not m:
            raise KeyError(f'not an mmpvt PVT key: {key}')
        stage, part, rest = int(m.group(1)), m.group(2), m.group(3)
        if part == 'pos_embed':
            if stage == last and is_square(value.shape[1]):
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
