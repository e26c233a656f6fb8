"""PVTv2 checkpoint layouts and their conversion to mmpvt's.

Per stage s (1-based in the official names, 0-based elsewhere), layer j:

===================  ==================================  ======================================
layout               stage pieces                        inside a layer
===================  ==================================  ======================================
``official``         ``patch_embed{s}``, ``block{s}.{j}``,  ``attn.{q,kv,proj,sr,norm}``,
(whai362/PVT v2)     ``norm{s}``; ``head`` (dropped)       ``mlp.{fc1,dwconv.dwconv,fc2}``
``mmdet`` (3.x       ``layers.{s}.0`` (``projection``,     ``attn.attn.in_proj_*`` = [q; k; v],
PyramidVision-       ``norm``), ``layers.{s}.1.{j}``,     ``attn.attn.out_proj``, ``ffn.layers.{0,
TransformerV2)       ``layers.{s}.2``                      1,4}`` (fc1/fc2 as 1x1 convolutions)
``timm``             ``patch_embed`` (stage 1),           as official, but ``mlp.dwconv`` (no
(``pvt_v2_*``)       ``stages.{s}.downsample``,           inner ``dwconv``)
                     ``stages.{s}.blocks.{j}``,
                     ``stages.{s}.norm``; ``head``
``transformers``     ``[pvt_v2.]encoder.layers.{s}.``     ``attention.{query,key,value,proj,
(``PvtV2*``)         ``patch_embedding.{proj,layer_norm}``  spatial_reduction,layer_norm}``,
                     ``.blocks.{j}``, ``.layer_norm``;     ``layer_norm_{1,2}``,
                     ``classifier`` (dropped)              ``mlp.{dense1,dwconv.dwconv,dense2}``
``mmpvt``            ``stages.{s}.patch_embed``,          as official
                     ``stages.{s}.blocks.{j}``,
                     ``stages.{s}.norm``; ``head``
===================  ==================================  ======================================

Every converter takes ``classifier``: False (a backbone) drops the head, True keeps it as
``head.*`` (the authors' and timm's name).
"""
import re
from collections import OrderedDict
from typing import List, Tuple

from ..archs import PVTV2_ARCH_KEYS, PVTV2_ARCHS
from .base import (HF_BLOCK_RENAMES, StateDict, drop_keys, mmdet_layers_to_mmpvt, rename_prefix,
                   split_stage_keys, stack_key_value, stage_shapes)

FAMILY = 'PVTv2'
# Keys only a v2 checkpoint has: a depth-wise conv in the FFN or a per-stage norm, in any layout.
MARKER = re.compile(r'(^|\.)dwconv\.|^norm\d+\.|^layers\.\d+\.2\.'
                    r'|^layers\.\d+\.1\.\d+\.ffn\.layers\.1\.'
                    r'|^stages\.\d+\.norm\.|^(pvt_v2\.)?encoder\.layers\.\d+\.')
CLASSIFIER_KEYS = re.compile(r'^(head|classifier)\.(weight|bias)$')


def _drop_classifier(state_dict: StateDict, classifier: bool = False
                     ) -> Tuple[StateDict, List[str]]:
    """Without `classifier`: (the state dict without its head, the head's keys); with it: the
    head kept, as ``head.*`` (transformers calls it ``classifier``)."""
    if not classifier:
        return drop_keys(state_dict, CLASSIFIER_KEYS)
    return OrderedDict((re.sub(r'^classifier\.', 'head.', k) if CLASSIFIER_KEYS.match(k) else k, v)
                       for k, v in state_dict.items()), []


def official_to_mmpvt(state_dict: StateDict, classifier: bool = False
                      ) -> Tuple[StateDict, List[str]]:
    """whai362/PVT v2 keys -> mmpvt keys; returns (converted, dropped classifier entries)."""
    state_dict, dropped = _drop_classifier(state_dict, classifier)
    out: StateDict = OrderedDict()
    for key, value in state_dict.items():
        m = re.match(r'^(patch_embed|block|norm)(\d+)\.(.*)$', key)
        if m:
            part = dict(patch_embed='patch_embed', block='blocks', norm='norm')[m.group(1)]
            key = f'stages.{int(m.group(2)) - 1}.{part}.{m.group(3)}'
        out[key] = value
    return out, dropped


def mmdet_to_mmpvt(state_dict: StateDict, classifier: bool = False
                   ) -> Tuple[StateDict, List[str]]:
    """mmdet 3.x ``PyramidVisionTransformerV2`` keys -> mmpvt keys: the FFN is
    ``ffn.layers.{0,1,4}`` (fc1, depth-wise conv, fc2), the stage norm ``layers.{s}.2``
    (mmdet's backbone has no head, whatever `classifier` says)."""
    return mmdet_layers_to_mmpvt(
        state_dict,
        layer_renames=(('attn.attn.out_proj.', 'attn.proj.'), ('ffn.layers.0.', 'mlp.fc1.'),
                       ('ffn.layers.1.', 'mlp.dwconv.dwconv.'), ('ffn.layers.4.', 'mlp.fc2.')),
        first_block=0, stage_keys=((r'^2\.', 'norm.'), )), []


def timm_to_mmpvt(state_dict: StateDict, classifier: bool = False
                  ) -> Tuple[StateDict, List[str]]:
    """timm ``pvt_v2_*`` keys -> mmpvt keys."""
    state_dict, dropped = _drop_classifier(state_dict, classifier)
    out: StateDict = OrderedDict()
    for key, value in state_dict.items():
        key = re.sub(r'^patch_embed\.', 'stages.0.patch_embed.', key)
        key = re.sub(r'^stages\.(\d+)\.downsample\.', r'stages.\1.patch_embed.', key)
        key = re.sub(r'\.mlp\.dwconv\.(weight|bias)$', r'.mlp.dwconv.dwconv.\1', key)
        out[key] = value
    return out, dropped


_HF_LAYER_RENAMES = (
    ('attention.query.', 'attn.q.'),
    ('attention.proj.', 'attn.proj.'),
    ('attention.spatial_reduction.', 'attn.sr.'),
    ('attention.layer_norm.', 'attn.norm.'),
) + HF_BLOCK_RENAMES


def transformers_to_mmpvt(state_dict: StateDict, classifier: bool = False
                          ) -> Tuple[StateDict, List[str]]:
    """transformers ``PvtV2Model``/``PvtV2ForImageClassification``/``PvtV2Backbone`` keys ->
    mmpvt keys (separate key and value projections are stacked into ``kv``, K first)."""
    state_dict, dropped = _drop_classifier(state_dict, classifier)
    out: StateDict = OrderedDict()
    kv_parts = {}
    pattern = r'^(?:pvt_v2\.)?encoder\.layers\.(\d+)\.(.*)$'
    for key, stage, rest, value in split_stage_keys(state_dict, pattern, out):
        block = re.match(r'^blocks\.(\d+)\.(.*)$', rest)
        if rest.startswith('patch_embedding.'):
            rest = rest[len('patch_embedding.'):].replace('layer_norm.', 'norm.')
            out[f'stages.{stage}.patch_embed.{rest}'] = value
        elif rest.startswith('layer_norm.'):
            out[f'stages.{stage}.norm.{rest[len("layer_norm."):]}'] = value
        elif block is None:
            out[key] = value
        else:
            prefix, rest = f'stages.{stage}.blocks.{block.group(1)}.', block.group(2)
            kv = re.match(r'^attention\.(key|value)\.(weight|bias)$', rest)
            if kv:
                kv_parts.setdefault(prefix + 'attn.kv.' + kv.group(2), {})[kv.group(1)] = value
            else:
                out[prefix + rename_prefix(rest, _HF_LAYER_RENAMES)] = value
    stack_key_value(kv_parts, out, 'attention.')
    return out, dropped


TO_MMPVT = dict(official=official_to_mmpvt, mmdet=mmdet_to_mmpvt, timm=timm_to_mmpvt,
                transformers=transformers_to_mmpvt, mmpvt=_drop_classifier)


def mmpvt_to_official(state_dict: StateDict) -> StateDict:
    """mmpvt keys -> the official layout (backbone only, no head)."""
    out: StateDict = OrderedDict()
    for key, value in state_dict.items():
        m = re.match(r'^stages\.(\d+)\.(patch_embed|blocks|norm)\.(.*)$', key)
        if not m:
            raise KeyError(f'not an mmpvt PVTv2 key: {key}')
        name = dict(patch_embed='patch_embed', blocks='block', norm='norm')[m.group(2)]
        out[f'{name}{int(m.group(1)) + 1}.{m.group(3)}'] = value
    return out


def infer_arch(state_dict: StateDict) -> dict:
    """The PVTv2 arch an mmpvt-layout state dict was made for, read off its shapes.

    num_heads changes no shape: a named variant with the same shapes gives its heads, otherwise
    C / 64 is assumed. Returns dict(arch=..., name='b0'|...|'b2_li'|...|None).
    """
    arch = {k: [] for k in PVTV2_ARCH_KEYS}
    linear = []
    for stage in stage_shapes(state_dict):
        dim, kernel = stage['dim'], stage['sr_kernel']
        arch['embed_dims'].append(dim)
        arch['depths'].append(stage['depth'])
        arch['num_heads'].append(max(dim // 64, 1))
        arch['mlp_ratios'].append(stage['hidden'] // dim)
        linear.append(kernel == 1)  # linear SRA: a 1x1 conv after the 7x7 pool
        arch['sr_ratios'].append(kernel if kernel and kernel > 1 else 1)
    arch['linear'] = bool(linear) and all(linear)
    shape_keys = ('embed_dims', 'depths', 'mlp_ratios')
    name = next((n for n, a in PVTV2_ARCHS.items()
                 if all(list(a[k]) == arch[k] for k in shape_keys)
                 and a.get('linear', False) == arch['linear']
                 and (arch['linear'] or list(a['sr_ratios']) == arch['sr_ratios'])), None)
    if name is not None:
        arch['num_heads'] = list(PVTV2_ARCHS[name]['num_heads'])
        arch['sr_ratios'] = list(PVTV2_ARCHS[name]['sr_ratios'])
    return dict(arch=arch, name=name)
