"""PVTv2 (Wang et al., "PVT v2: Improved Baselines with Pyramid Vision Transformer", CVMJ 2022).

The file reads top to bottom, in plain PyTorch:

    PVTV2_ARCHS -> OverlapPatchEmbed, ConvFeedForward -> PVTv2Stage -> PVTv2 -> checkpoint
    layouts -> FAMILY

Spatial-reduction attention and the encoder layer are shared with PVT v1 (:mod:`.common`). What
v2 changes against v1 (:mod:`.pvt_v1`), each visible in this file:

==========================  ====================================  =================================
                            PVT v1                                PVTv2
==========================  ====================================  =================================
patch embedding             P x P, stride P (``PatchEmbed``)      overlapping 7/4/3 then 3/2/1
                                                                  (``OverlapPatchEmbed``)
position information        learnt table per stage, resized       none; the FFN's 3x3 depth-wise
                                                                  conv (``ConvFeedForward``)
attention                   SRA, R x R reduction                  same; b2-li: linear SRA (7 x 7
                                                                  average pool, 1x1 conv, GELU)
after each stage            nothing                               LayerNorm (``stages.i.norm``)
==========================  ====================================  =================================

LayerNorm eps is the official one at every location: 1e-6 in the layers
and the per-stage norms, 1e-5 (PyTorch's default, as trained) in patch embedding and in the K/V
reduction. mmdet 3.3 and transformers use 1e-6 everywhere, which moves features off the official
model's.

Any input size: the patch embeddings give ceil(H/4), ceil(H/8), ... by construction. A reduction
ratio R that does not divide a stage grid (the official R x R conv would silently drop the last
rows/columns) zero-pads the grid to a multiple of R, as PVT v1 does here: no pixel is lost, and
on grids that R divides (every grid once inputs are padded to 32, which mmdet and mmseg do) the
result is the official one exactly. Linear SRA is defined for every size and is official everywhere.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .. import ops
from ..ops import Grid
from .common import (BLOCK_NORM_EPS, MMDET_NORM_EPS, PATCH_NORM_EPS, Family, FeedForward, Layout,
                     PVTBlock, PyramidVisionTransformer, StateDict, drop_path_schedule, parse_arch,
                     register_family, run_blocks)
from .layouts import (HF_BLOCK_RENAMES, drop_keys, layout, mmdet_layers_to_mmpvt, rename_keys,
                      rename_prefix, split_stage_keys, stack_key_value, stage_shapes)

# ---------------------------------------------------------------------------------------------
# Variants

_V2_COMMON = dict(num_heads=(1, 2, 5, 8), sr_ratios=(8, 4, 2, 1))
_V2_WIDE = (64, 128, 320, 512)
PVTV2_ARCHS: Dict[str, dict] = {
    'b0':
    dict(_V2_COMMON, embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2), mlp_ratios=(8, 8, 4, 4)),
    'b1':
    dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(2, 2, 2, 2), mlp_ratios=(8, 8, 4, 4)),
    'b2':
    dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 4, 6, 3), mlp_ratios=(8, 8, 4, 4)),
    'b2_li':
    dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 4, 6, 3), mlp_ratios=(8, 8, 4, 4),
         linear=True),
    'b3':
    dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 4, 18, 3), mlp_ratios=(8, 8, 4, 4)),
    'b4':
    dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 8, 27, 3), mlp_ratios=(8, 8, 4, 4)),
    'b5':
    dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 6, 40, 3), mlp_ratios=(4, 4, 4, 4)),
}
PVTV2_ARCH_KEYS = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios')
PVTV2_ARCH_FLAGS = dict(linear=False)  # linear SRA in every stage (b2-li)

# ---------------------------------------------------------------------------------------------
# Layers and stage


class OverlapPatchEmbed(nn.Module):
    """PVTv2: overlapping patch embedding, a k x k convolution with stride s and padding k // 2.

    Args:
        in_channels: channels of the input map.
        embed_dims: output width C.
        patch_size: kernel k (7 in stage 1, 3 later).
        stride: s (4 in stage 1, 2 later).

    Shapes: (B, in_channels, H, W) -> tokens (B, h*w, C) and (h, w) = (ceil(H/s), ceil(W/s))
    (for k = 2s - 1, the official configuration).
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=stride,
                              padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)

    def forward(self, x: Tensor) -> Tuple[Tensor, Grid]:
        x = self.proj(x)
        return self.norm(ops.map_to_tokens(x)), (x.shape[2], x.shape[3])


class DepthwiseConv(nn.Module):
    """Holds the 3x3 depth-wise convolution, so that its checkpoint key is ``dwconv.dwconv`` (the
    authors'). The feed-forward runs it on channels-last tokens through
    :func:`mmpvt.ops.depthwise_conv` (or fused): a forward hook goes on ``fc2``, not here."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)


class ConvFeedForward(FeedForward):
    """PVTv2 convolutional feed-forward: fc1, [ReLU if `relu`], 3x3 depth-wise conv, GELU,
    [dropout], fc2, [dropout].

    The depth-wise conv (zero padding 1) gives the FFN the positional information that v2 has no
    position table for. `relu` is set in linear-SRA models (b2-li), as in the official code.

    Shapes: tokens (B, h*w, C) with grid (h, w) -> (B, h*w, C).
    """

    def __init__(self, embed_dims: int, hidden_dims: int, relu: bool = False,
                 drop: float = 0.0) -> None:
        super().__init__(embed_dims, hidden_dims, drop)
        self.dwconv = DepthwiseConv(hidden_dims)
        self.relu = relu

    def hidden(self, x: Tensor) -> Tensor:
        h = super().hidden(x)
        return torch.relu_(h) if self.relu else h  # fc1's output is not needed by its backward

    def spatial_conv(self) -> nn.Conv2d:
        return self.dwconv.dwconv


# Overlapping patch embedding per stage: (kernel, stride); padding is kernel // 2.
PATCH_EMBED = ((7, 4), (3, 2), (3, 2), (3, 2))


class PVTv2Stage(nn.Module):
    """One PVTv2 stage: overlapping patch embedding, L_i encoder layers, LayerNorm (eps 1e-6).

    `drop_rate` is the dropout after each attention's projection and inside each feed-forward,
    `attn_drop_rate` the attention weights' (both 0 by default).

    Shapes: (B, C_in, H, W) -> tokens (B, h*w, C) and (h, w) = (ceil(H/s), ceil(W/s)).
    """

    def __init__(self, in_channels: int, embed_dims: int, num_heads: int, mlp_ratio: float,
                 sr_ratio: int, patch_size: int, stride: int, drop_path_rates: Sequence[float],
                 linear: bool = False, with_cp: bool = False, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.patch_embed = OverlapPatchEmbed(in_channels, embed_dims, patch_size, stride)
        hidden = int(embed_dims * mlp_ratio)
        self.blocks = nn.ModuleList(
            PVTBlock(embed_dims, num_heads, sr_ratio,
                     ConvFeedForward(embed_dims, hidden, relu=linear, drop=drop_rate),
                     drop_path=dpr, linear=linear, attn_drop=attn_drop_rate, proj_drop=drop_rate)
            for dpr in drop_path_rates)
        self.norm = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x, hw = self.patch_embed(x)
        return self.norm(run_blocks(self.blocks, x, hw, self.with_cp)), hw


class PVTv2(PyramidVisionTransformer):
    """The PVTv2 encoder (b0-b5, b2-li) in plain PyTorch, with the authors' random
    initialisation (weights: see :class:`~.common.PyramidVisionTransformer`); ``mmpvt.PVTv2`` in
    OpenMMLab configs.

    Args:
        arch: 'b0' | 'b1' | 'b2' | 'b2_li' | 'b3' | 'b4' | 'b5', or a dict with per-stage
            embed_dims, depths, num_heads, mlp_ratios, sr_ratios and optionally ``linear``
            (linear SRA, default False). Default 'b2'.
        in_channels: input channels. Default 3.
        out_indices: which stage outputs (0-based) to return, in the order given; an int selects
            one. Default all four. Stages after the last one returned are not run and not
            trained (requires_grad=False, eval mode), as if frozen.
        drop_rate: dropout after the attention projections and in the feed-forwards, in [0, 1).
            Default 0.
        attn_drop_rate: dropout on the attention weights, in [0, 1). Default 0.
        drop_path_rate: stochastic depth of the last layer, in [0, 1), rising linearly from 0.
            Default 0.1 (the authors' detection and segmentation backbones).
        frozen_stages: stages 1..k (patch embedding, layers, stage norm) get requires_grad=False
            and stay in eval mode; -1 (default) or 0 freezes nothing.
        with_cp: activation checkpointing per layer.

    Shapes: (B, in_channels, H, W) -> tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)), s = 4, 8, 16,
    32; C = 32, 64, 160, 256 (b0) or 64, 128, 320, 512 (b1-b5).
    """

    family = 'PVTv2'

    def __init__(self, arch: Union[str, dict] = 'b2', in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), drop_path_rate: float = 0.1,
                 frozen_stages: int = -1, with_cp: bool = False, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0) -> None:
        parsed = parse_arch(arch, 'PVTv2', PVTV2_ARCHS, PVTV2_ARCH_KEYS, PVTV2_ARCH_FLAGS)
        depths = parsed['depths']
        if len(depths) > len(PATCH_EMBED):
            raise ValueError(f'PVTv2 arch: at most {len(PATCH_EMBED)} stages, got {len(depths)}')
        super().__init__(
            len(depths), in_channels, out_indices, drop_rate, attn_drop_rate, drop_path_rate,
            frozen_stages, with_cp)
        self.arch = parsed
        self.arch_name = arch if isinstance(arch, str) else 'custom'
        self.embed_dims = parsed['embed_dims']
        channels = in_channels
        for i, rates in enumerate(drop_path_schedule(drop_path_rate, depths)):
            self.stages.append(
                PVTv2Stage(in_channels=channels, embed_dims=self.embed_dims[i],
                           num_heads=parsed['num_heads'][i], mlp_ratio=parsed['mlp_ratios'][i],
                           sr_ratio=parsed['sr_ratios'][i], patch_size=PATCH_EMBED[i][0],
                           stride=PATCH_EMBED[i][1], drop_path_rates=rates, linear=parsed['linear'],
                           with_cp=with_cp, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate))
            channels = self.embed_dims[i]
        self.finish()


# ---------------------------------------------------------------------------------------------
# Checkpoint layouts
#
# Each layout is a converter to mmpvt's names (the encoder's above).
#
# Per stage s (1-based in the official names, 0-based elsewhere), layer j:
#
# ===================  ==================================  ======================================
# layout               stage pieces                        inside a layer
# ===================  ==================================  ======================================
# ``official``         ``patch_embed{s}``, ``block{s}.{j}``,  ``attn.{q,kv,proj,sr,norm}``,
# (whai362/PVT v2)     ``norm{s}``; ``head`` (dropped)       ``mlp.{fc1,dwconv.dwconv,fc2}``
# ``mmdet`` (3.x       ``layers.{s}.0`` (``projection``,     ``attn.attn.in_proj_*`` = [q; k; v],
# PyramidVision-       ``norm``), ``layers.{s}.1.{j}``,     ``attn.attn.out_proj``, ``ffn.layers.{0,
# TransformerV2)       ``layers.{s}.2``                      1,4}`` (fc1/fc2 as 1x1 convolutions)
# ``timm``             ``patch_embed`` (stage 1),           as official, but ``mlp.dwconv`` (no
# (``pvt_v2_*``)       ``stages.{s}.downsample``,           inner ``dwconv``)
#                      ``stages.{s}.blocks.{j}``,
#                      ``stages.{s}.norm``; ``head``
# ``transformers``     ``[pvt_v2.]encoder.layers.{s}.``     ``attention.{query,key,value,proj,
# (``PvtV2*``)         ``patch_embedding.{proj,layer_norm}``  spatial_reduction,layer_norm}``,
#                      ``.blocks.{j}``, ``.layer_norm``;     ``layer_norm_{1,2}``,
#                      ``classifier`` (dropped)              ``mlp.{dense1,dwconv.dwconv,dense2}``
# ``mmpvt``            ``stages.{s}.patch_embed``,          as official
#                      ``stages.{s}.blocks.{j}``,
#                      ``stages.{s}.norm``; ``head``
# ===================  ==================================  ======================================
#
# Every converter takes ``classifier``: False (a backbone) drops the head, True keeps it as
# ``head.*`` (the authors' and timm's name).

# Keys only a v2 checkpoint has: a depth-wise conv in the FFN or a per-stage norm, in any layout.
MARKER = re.compile(r'(^|\.)dwconv\.|^norm\d+\.|^layers\.\d+\.2\.'
                    r'|^layers\.\d+\.1\.\d+\.ffn\.layers\.1\.'
                    r'|^stages\.\d+\.norm\.|^(pvt_v2\.)?encoder\.layers\.\d+\.')
CLASSIFIER_KEYS = re.compile(r'^(head|classifier)\.(weight|bias)$')
LAYOUTS: Dict[str, Layout] = {}


def _drop_classifier(state_dict: StateDict,
                     classifier: bool = False) -> Tuple[StateDict, List[str]]:
    """Without `classifier`: (the state dict without its head, the head's keys); with it: the
    head kept, as ``head.*`` (transformers calls it ``classifier``)."""
    if not classifier:
        return drop_keys(state_dict, CLASSIFIER_KEYS)
    return OrderedDict((re.sub(r'^classifier\.', 'head.', k) if CLASSIFIER_KEYS.match(k) else k, v)
                       for k, v in state_dict.items()), []


# The authors' stage names carry a 1-based stage number; mmpvt's stages are 0-based.
OFFICIAL_RENAMES = ((r'^patch_embed(?P<s1>\d+)\.', 'stages.{s0}.patch_embed.'),
                    (r'^block(?P<s1>\d+)\.', 'stages.{s0}.blocks.'), (r'^norm(?P<s1>\d+)\.',
                                                                      'stages.{s0}.norm.'))


@layout(LAYOUTS, 'official', r'^(patch_embed\d+\.|block\d+\.\d+\.|norm\d+\.)',
        example='patch_embed1.proj.weight')
def official_to_mmpvt(state_dict: StateDict,
                      classifier: bool = False) -> Tuple[StateDict, List[str]]:
    """whai362/PVT v2 keys -> mmpvt keys; returns (converted, dropped classifier entries)."""
    state_dict, dropped = _drop_classifier(state_dict, classifier)
    return rename_keys(state_dict, OFFICIAL_RENAMES), dropped


@layout(LAYOUTS, 'mmdet', r'^layers\.\d+\.\d+\.', example='layers.0.0.projection.weight',
        layer_norm_eps=MMDET_NORM_EPS)
def mmdet_to_mmpvt(state_dict: StateDict, classifier: bool = False) -> Tuple[StateDict, List[str]]:
    """mmdet 3.x ``PyramidVisionTransformerV2`` keys -> mmpvt keys: the FFN is
    ``ffn.layers.{0,1,4}`` (fc1, depth-wise conv, fc2), the stage norm ``layers.{s}.2``
    (mmdet's backbone has no head, whatever `classifier` says)."""
    return mmdet_layers_to_mmpvt(
        state_dict,
        layer_renames=(('attn.attn.out_proj.', 'attn.proj.'), ('ffn.layers.0.', 'mlp.fc1.'),
                       ('ffn.layers.1.', 'mlp.dwconv.dwconv.'), ('ffn.layers.4.', 'mlp.fc2.')),
        first_block=0, stage_keys=((r'^2\.', 'norm.'), )), []


# timm's own keys: stage 1's embedding at the top, the others as ``downsample``, the depth-wise
# conv without the inner ``dwconv``; the rest is named as mmpvt names it.
TIMM_RENAMES = ((r'^patch_embed\.', 'stages.0.patch_embed.'), (r'^stages\.(?P<s>\d+)\.downsample\.',
                                                               'stages.{s}.patch_embed.'),
                (r'\.mlp\.dwconv\.(?P<p>weight|bias)$', '.mlp.dwconv.dwconv.{p}'))


@layout(
    LAYOUTS, 'timm', r'^(patch_embed\.(proj|norm)\.|stages\.\d+\.downsample\.'
    r'|stages\.\d+\.blocks\.\d+\.mlp\.dwconv\.(weight|bias)$)',
    example='stages.1.downsample.proj.weight')
def timm_to_mmpvt(state_dict: StateDict, classifier: bool = False) -> Tuple[StateDict, List[str]]:
    """timm ``pvt_v2_*`` keys -> mmpvt keys; returns (converted, dropped classifier entries)."""
    state_dict, dropped = _drop_classifier(state_dict, classifier)
    return rename_keys(state_dict, TIMM_RENAMES), dropped


_HF_LAYER_RENAMES = (
    ('attention.query.', 'attn.q.'),
    ('attention.proj.', 'attn.proj.'),
    ('attention.spatial_reduction.', 'attn.sr.'),
    ('attention.layer_norm.', 'attn.norm.'),
) + HF_BLOCK_RENAMES


@layout(LAYOUTS, 'transformers', r'^(pvt_v2\.)?encoder\.layers\.\d+\.',
        example='encoder.layers.0.patch_embedding.proj.weight')
def transformers_to_mmpvt(state_dict: StateDict,
                          classifier: bool = False) -> Tuple[StateDict, List[str]]:
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


@layout(LAYOUTS, 'mmpvt',
        r'^stages\.\d+\.(patch_embed\.|norm\.|blocks\.\d+\.mlp\.dwconv\.dwconv\.)',
        example='stages.0.patch_embed.proj.weight')
def mmpvt_to_mmpvt(state_dict: StateDict, classifier: bool = False) -> Tuple[StateDict, List[str]]:
    """mmpvt's own names: the classifier head dropped (or kept as ``head.*``), nothing renamed."""
    return _drop_classifier(state_dict, classifier)


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
                 if all(list(a[k]) == arch[k]
                        for k in shape_keys) and a.get('linear', False) == arch['linear'] and (
                            arch['linear'] or list(a['sr_ratios']) == arch['sr_ratios'])), None)
    if name is not None:
        arch['num_heads'] = list(PVTV2_ARCHS[name]['num_heads'])
        arch['sr_ratios'] = list(PVTV2_ARCHS[name]['sr_ratios'])
    return dict(arch=arch, name=name)


# The family's record; classifier=: the authors' classifier, the last stage's tokens averaged into
# the linear head.
FAMILY = register_family(
    Family(
        name='PVTv2', encoder=PVTv2, archs=PVTV2_ARCHS, default_arch='b2', marker=MARKER,
        layouts=LAYOUTS, to_official=mmpvt_to_official, infer_arch=infer_arch,
        classifier=dict(backbone=dict(out_indices=(3, )), neck=dict(type='GlobalAveragePooling'))))
