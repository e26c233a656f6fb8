"""Pyramid Vision Transformer (PVT v1), Wang et al., ICCV 2021.

The file reads top to bottom, as the paper builds the network (Sec. 3), in plain PyTorch:

    PVT_ARCHS (Table 1) -> PatchEmbed -> PVTStage -> PVT -> checkpoint layouts -> FAMILY

Spatial-reduction attention, the feed-forward and the encoder layer are shared with PVTv2
(:mod:`.common`). What is v1's own: non-overlapping patch embedding and an absolute position
table per stage (no stage norm, no convolution in the feed-forward).

Choices that differ from a literal transcription of the authors' code, and why:

* Sizes that a patch size does not divide are zero-padded at the right/bottom instead of floored,
  so no border pixel is dropped: stage outputs are ceil(H/4), ceil(H/8), ceil(H/16), ceil(H/32).
  The K/V reduction pads its grid the same way. For sizes that 32 divides (always the case after
  mmdet/mmseg pad inputs to 32) nothing changes.
* Attention runs through ``F.scaled_dot_product_attention``; numerically it is eq. (4).
* LayerNorm eps follows what the official checkpoints were trained with: 1e-6 in the blocks,
  1e-5 in patch embedding and in the K/V reduction. (mmdet's port uses 1e-6 everywhere, which
  moves its features about 2e-4 away from the official model's.)

As an ImageNet classifier (``out_type='cls_token'``, the authors' classification model) the last
stage also carries the class token: it is prepended to the stage's tokens as token 0, its
position is row 0 of that stage's table (1 + 7 x 7 rows, row 0 added as is, the rest resized to
the grid), it takes part in the stage's attention, and after a final LayerNorm it is the
network's output. Dense prediction never sees it.
"""
import math
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .. import ops
from ..ops import Grid
from .common import (BLOCK_NORM_EPS, MMDET_NORM_EPS, PATCH_NORM_EPS, Family, FeedForward, Layout,
                     PVTBlock, PyramidVisionTransformer, StateDict, drop_path_schedule, dropout,
                     parse_arch, register_family, run_blocks, trunc_normal_)
from .layouts import (HF_BLOCK_RENAMES, is_square, layout, mmdet_layers_to_mmpvt, rename_prefix,
                      stack_key_value, stage_shapes, without_class_row)

# ---------------------------------------------------------------------------------------------
# Variants (Table 1)

_PVT_COMMON = dict(
    embed_dims=(64, 128, 320, 512),
    num_heads=(1, 2, 5, 8),
    mlp_ratios=(8, 8, 4, 4),
    sr_ratios=(8, 4, 2, 1),
    patch_sizes=(4, 2, 2, 2),
)
# Table 9's "Wider" PVT-Small: PVT-S with its hidden dimensions x1.4 (89.6, 179.2, 448, 716.8),
# 46.8M parameters as an ImageNet classifier. The exact widths were never published and no
# rounding of them gives 46.8M. We keep PVT-S's head width of 64 in every stage and round the
# number of heads (1.4, 2.8, 7, 11.2 -> 1, 3, 7, 11): widths 64, 192, 448, 704, a classifier of
# 46,383,464 parameters (0.9 % under 46.8M); depths, ratios and patch sizes are PVT-S's. Widths
# that are multiples of 64 also let a checkpoint's variant be recognised from its shapes.
# Rounding to multiples of the head counts instead (90, 180, 450, 720; heads 90 wide): 47.86M.
PVT_SMALL_WIDE = dict(_PVT_COMMON, embed_dims=(64, 192, 448, 704), num_heads=(1, 3, 7, 11),
                      depths=(3, 4, 6, 3))
PVT_ARCHS: Dict[str, dict] = {
    'tiny': dict(_PVT_COMMON, depths=(2, 2, 2, 2)),
    'small': dict(_PVT_COMMON, depths=(3, 4, 6, 3)),
    'medium': dict(_PVT_COMMON, depths=(3, 4, 18, 3)),
    'large': dict(_PVT_COMMON, depths=(3, 8, 27, 3)),
    'small_wide': PVT_SMALL_WIDE,
}
# The per-stage entries of a custom v1 arch dict.
PVT_ARCH_KEYS = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios', 'patch_sizes')

# ---------------------------------------------------------------------------------------------
# Layers and stage


class PatchEmbed(nn.Module):
    """PVT v1: linear projection of non-overlapping P x P patches, then LayerNorm.

    Args:
        in_channels: channels of the input map.
        embed_dims: output width C.
        patch_size: P; the projection is a P x P convolution with stride P.

    Shapes: (B, in_channels, H, W) -> tokens (B, ceil(H/P) * ceil(W/P), C) and that grid (h, w).
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)

    def forward(self, x: Tensor) -> Tuple[Tensor, Grid]:
        x = self.proj(ops.pad_to_multiple(x, self.patch_size))
        return self.norm(ops.map_to_tokens(x)), (x.shape[2], x.shape[3])


OUT_TYPES = ('featmap', 'cls_token')


class PVTStage(nn.Module):
    """One pyramid stage: patch embedding, absolute position embedding, L_i encoder layers.

    The position table lives on the pre-training grid `pos_grid` (224 px: 56², 28², 14², 7²) and is
    resized (bilinearly, align_corners=False) to the actual grid of each input. With
    `num_extra_tokens` = 1 (the classifier's last stage) the table has one more row, first: the
    class token's position, added to it as is, never resized.

    `drop_rate` is the dropout after the position embedding, after each attention's projection
    and inside each feed-forward; `attn_drop_rate` the attention weights' (both 0 by default).

    Shapes: (B, C_in, H, W) [+ class token (1, 1, C)] -> tokens (B, [1 +] h*w, C) and
    (h, w) = (ceil(H/P), ceil(W/P)).
    """

    def __init__(self, in_channels: int, embed_dims: int, num_heads: int, mlp_ratio: float,
                 sr_ratio: int, patch_size: int, pos_grid: Tuple[int, int],
                 drop_path_rates: Sequence[float], with_cp: bool = False, num_extra_tokens: int = 0,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0) -> None:
        super().__init__()
        self.pos_grid = tuple(pos_grid)
        self.num_extra_tokens = num_extra_tokens
        self.with_cp = with_cp
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_extra_tokens + pos_grid[0] * pos_grid[1], embed_dims))
        self.pos_drop = dropout(drop_rate)
        hidden = int(embed_dims * mlp_ratio)
        self.blocks = nn.ModuleList(
            PVTBlock(embed_dims, num_heads, sr_ratio, FeedForward(embed_dims, hidden, drop_rate),
                     drop_path=dpr, attn_drop=attn_drop_rate, proj_drop=drop_rate)
            for dpr in drop_path_rates)

    def pos_embed_for(self, hw: Tuple[int, int]) -> Tensor:
        """The position table resized to grid `hw`, (1, [1 +] h*w, C) (the extra row unchanged).

        Resized on every call, never cached: a cache keyed on the parameter goes stale when its
        values change in place through ``.data`` (as mmengine's EMA hook updates the averaged
        model), and it buys nothing measurable: the four resizes of PVT-S at 800x1344 take
        5.7 ms of a 4.7 s CPU forward (0.1%).
        """
        n = self.num_extra_tokens
        if not n:
            return ops.resize_pos_embed(self.pos_embed, self.pos_grid, hw)
        grid = ops.resize_pos_embed(self.pos_embed[:, n:], self.pos_grid, hw)
        return torch.cat([self.pos_embed[:, :n], grid], dim=1)

    def forward(self, x: Tensor,
                cls_token: Optional[Tensor] = None) -> Tuple[Tensor, Tuple[int, int]]:
        x, hw = self.patch_embed(x)
        if cls_token is not None:
            x = torch.cat([cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x + self.pos_embed_for(hw))
        return run_blocks(self.blocks, x, hw, self.with_cp), hw


class PVT(PyramidVisionTransformer):
    """The Pyramid Vision Transformer (PVT v1) encoder in plain PyTorch, initialised as the
    authors' v1 code does (weights: see :class:`~.common.PyramidVisionTransformer`); for
    OpenMMLab configs it is registered as ``mmpvt.PVT``.

    Args:
        arch: 'tiny' | 'small' | 'medium' | 'large' (Table 1), or a dict with per-stage
            embed_dims, depths, num_heads, mlp_ratios, sr_ratios, patch_sizes. Default 'small'.
        pretrain_img_size: image size the position tables were learnt at (int or (H, W)); 224
            for the official checkpoints.
        in_channels: input channels. Default 3.
        out_indices: which stage outputs F1..F4 (0-based) to return, in the order given; an int
            selects one. Default all four ('featmap'), the last stage ('cls_token'). Stages after
            the last one returned are not run and not trained (requires_grad=False, eval mode).
        drop_rate: dropout after the position embeddings, the attention projections and in the
            feed-forwards, in [0, 1). Default 0.
        attn_drop_rate: dropout on the attention weights, in [0, 1). Default 0.
        drop_path_rate: stochastic depth of the last block, in [0, 1); it rises linearly from 0.
            Default 0.1.
        frozen_stages: stages 1..k (patch embedding, position table, blocks) get
            requires_grad=False and stay in eval mode; -1 (default) or 0 freezes nothing. With
            every stage frozen the class token and the final norm are frozen too.
        with_cp: activation checkpointing per block (saves memory, same outputs and gradients).
        out_type: 'featmap' (default): the stage maps, for dense prediction. 'cls_token': the
            authors' ImageNet classifier body: a class token (``cls_token``, (1, 1, C4)) joins
            the last stage, whose position table gets one more row for it, and the output is that
            token after a final LayerNorm (``norm``, eps 1e-6); out_indices must then be the
            last stage only. The last stage must have sr_ratio 1 (every paper variant has).

    Shapes: (B, in_channels, H, W) -> 'featmap': tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)) for
    the selected stages, strides s = 4, 8, 16, 32 and C = 64, 128, 320, 512 for the paper's
    variants; 'cls_token': a tuple holding the (B, C4) class-token feature.
    """

    family = 'PVT'

    def __init__(self, arch: Union[str, dict] = 'small',
                 pretrain_img_size: Union[int, Tuple[int, int]] = 224, in_channels: int = 3,
                 out_indices: Optional[Sequence[int]] = None, drop_path_rate: float = 0.1,
                 frozen_stages: int = -1, with_cp: bool = False, out_type: str = 'featmap',
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0) -> None:
        parsed = parse_arch(arch, 'PVT', PVT_ARCHS, PVT_ARCH_KEYS)
        depths = parsed['depths']
        last = len(depths) - 1
        if out_type not in OUT_TYPES:
            raise ValueError(f'PVT: out_type must be one of {OUT_TYPES}, got {out_type!r}')
        with_cls_token = out_type == 'cls_token'
        if out_indices is None:
            out_indices = (last, ) if with_cls_token else (0, 1, 2, 3)
        if with_cls_token:
            as_tuple = (out_indices, ) if isinstance(out_indices, int) else out_indices
            if not isinstance(as_tuple, (list, tuple)) or tuple(as_tuple) != (last, ):
                raise ValueError(f"PVT: out_type='cls_token' outputs the class token of the last "
                                 f'stage only: out_indices must be ({last},), got {out_indices!r}')
            if parsed['sr_ratios'][last] != 1:
                raise ValueError(f"PVT: out_type='cls_token' needs sr_ratio 1 in the last stage "
                                 f"(the class token cannot join a spatial reduction), got "
                                 f"sr_ratios {list(parsed['sr_ratios'])}")
        super().__init__(
            len(depths), in_channels, out_indices, drop_rate, attn_drop_rate, drop_path_rate,
            frozen_stages, with_cp)
        self.out_type = out_type
        self.with_cls_token = with_cls_token
        self.arch = parsed
        self.arch_name = arch if isinstance(arch, str) else 'custom'
        if isinstance(pretrain_img_size, int):
            pretrain_img_size = (pretrain_img_size, pretrain_img_size)
        stride = 1
        for p in self.arch['patch_sizes']:
            stride *= p
        if (not isinstance(pretrain_img_size, (tuple, list)) or len(pretrain_img_size) != 2
                or not all(isinstance(s, int) and s >= stride for s in pretrain_img_size)):
            raise ValueError(f'PVT: pretrain_img_size must be an int or (H, W) of at least the '
                             f'total stride {stride}, got {pretrain_img_size!r}')
        self.embed_dims = self.arch['embed_dims']
        stride, channels = 1, in_channels
        for i, rates in enumerate(drop_path_schedule(drop_path_rate, depths)):
            stride *= self.arch['patch_sizes'][i]
            self.stages.append(
                PVTStage(in_channels=channels, embed_dims=self.embed_dims[i],
                         num_heads=self.arch['num_heads'][i], mlp_ratio=self.arch['mlp_ratios'][i],
                         sr_ratio=self.arch['sr_ratios'][i], patch_size=self.arch['patch_sizes'][i],
                         pos_grid=(pretrain_img_size[0] // stride,
                                   pretrain_img_size[1] // stride), drop_path_rates=rates,
                         with_cp=with_cp, num_extra_tokens=int(self.with_cls_token and i == last),
                         drop_rate=drop_rate, attn_drop_rate=attn_drop_rate))
            channels = self.embed_dims[i]
        if self.with_cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, channels))
            self.norm = nn.LayerNorm(channels, eps=BLOCK_NORM_EPS)
        self.finish()

    def reset_parameters(self) -> None:
        """The authors' v1 initialisation: trunc-normal(0.02) linears and position tables, unit
        LayerNorms, and convolutions (patch embedding, K/V reduction) left at PyTorch's default
        (the authors' v1 initialises only linears and norms; the He-normal convolutions of the
        shared init are v2's)."""
        super().reset_parameters()
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.reset_parameters()
        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=0.02)
        if self.with_cls_token:
            trunc_normal_(self.cls_token, std=0.02)

    def adapt_state_dict(self, state_dict: StateDict) -> Tuple[StateDict, List[str]]:
        """Position tables learnt on another token grid (another pre-training size) resized
        bilinearly to this encoder's grids, the class token's row (first) kept as it is; one
        note per resized table. Anything else is left for the strict check."""
        out, notes = OrderedDict(state_dict), []
        for i, stage in enumerate(self.stages):
            key, target = f'stages.{i}.pos_embed', stage.pos_embed
            value = out.get(key)
            if not (isinstance(value, Tensor) and value.dim() == 3
                    and value.shape[-1] == target.shape[-1] and value.shape[1] != target.shape[1]):
                continue
            extra = stage.num_extra_tokens
            if value.shape[1] > extra and is_square(value.shape[1] - extra):
                side = math.isqrt(value.shape[1] - extra)
                grid = ops.resize_pos_embed(value[:, extra:], (side, side), stage.pos_grid)
                out[key] = torch.cat([value[:, :extra], grid], dim=1)
                notes.append(f'resized {key} from a {side}x{side} grid to {stage.pos_grid}')
        return out, notes

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.with_cls_token and self.frozen_stages == len(self.stages):
            self.norm.eval()
            for p in (self.cls_token, *self.norm.parameters()):
                p.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """'featmap': see :meth:`PyramidVisionTransformer.forward`. 'cls_token': (B, C_in, H, W) ->
        ((B, C4) class token after the final norm, )."""
        if not self.with_cls_token:
            return super().forward(x)
        self._check_input(x)
        for stage in self.stages[:-1]:
            tokens, hw = stage(x)
            x = ops.tokens_to_map(tokens, hw)
        tokens, _ = self.stages[-1](x, cls_token=self.cls_token)
        # LayerNorm acts on each token alone: normalising only the class token gives the
        # official output exactly, without normalising the h*w tokens nobody reads.
        return (self.norm(tokens[:, 0]), )


# ---------------------------------------------------------------------------------------------
# Checkpoint layouts
#
# Each layout is a converter to mmpvt's names (the encoder's above):
#
# * ``official``: the authors' whai362/PVT release (``patch_embed{i}``, ``pos_embed{i}``,
#   ``block{i}.{j}``; stage-4 position table with a leading class-token row; ``cls_token``, ``norm``
#   and ``head`` are classification-only).
# * ``mmdet``: mmdet 3.x ``PyramidVisionTransformer`` (what
#   ``mmdet.models.backbones.pvt.pvt_convert`` writes: ``layers.{s}.0.projection``,
#   ``layers.{s}.1.0.pos_embed``, ``layers.{s}.1.{j+1}``, q and kv fused into
#   ``attn.attn.in_proj_*``, the MLP as 1x1 convolutions).
# * ``transformers``: ``PvtForImageClassification`` (prefix ``pvt.``, head ``classifier``) or
#   ``PvtModel`` (no prefix): ``encoder.patch_embeddings.{s}.{projection,layer_norm,
#   position_embeddings}`` (the class token is ``encoder.patch_embeddings.3.cls_token``),
#   ``encoder.block.{s}.{j}`` with separate query/key/value, ``encoder.layer_norm`` (final norm).
# * ``mmpvt``: :class:`PVT` above (``stages.{s}.patch_embed``, ``stages.{s}.pos_embed``,
#   ``stages.{s}.blocks.{j}``; a classifier's body also ``cls_token`` and ``norm``).
#
# Every converter takes ``classifier``: False (a backbone for dense prediction) drops the
# classification-only entries, named as in the file; True keeps them under mmpvt's names
# (``cls_token``, ``norm.*``, the full last position table, the head as ``head.*``).

# A key only a v1 checkpoint has: a position table, in any layout.
MARKER = re.compile(r'^(pos_embed\d+|layers\.\d+\.1\.0\.pos_embed|stages\.\d+\.pos_embed'
                    r'|(pvt\.)?encoder\.patch_embeddings\.\d+\.position_embeddings)$')
# The classification-only entries, in the official and in mmpvt's names.
CLASSIFIER_KEYS = re.compile(r'^(cls_token|norm\.(weight|bias)|head\.(weight|bias))$')
_POS_TABLE = re.compile(r'^stages\.\d+\.pos_embed$')
LAYOUTS: Dict[str, Layout] = {}


def _fit(renamed: Iterable[Tuple[str, str, Tensor]],
         classifier: bool) -> Tuple[StateDict, List[str]]:
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


@layout(LAYOUTS, 'official', r'^(patch_embed\d+\.|pos_embed\d+$|block\d+\.\d+\.)',
        example='patch_embed1.proj.weight')
def official_to_mmpvt(state_dict: StateDict,
                      classifier: bool = False) -> Tuple[StateDict, List[str]]:
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


@layout(LAYOUTS, 'mmdet', r'^layers\.\d+\.\d+\.', example='layers.0.0.projection.weight',
        layer_norm_eps=MMDET_NORM_EPS)
def mmdet_to_mmpvt(state_dict: StateDict, classifier: bool = False) -> Tuple[StateDict, List[str]]:
    """mmdet 3.x ``PyramidVisionTransformer`` keys -> mmpvt keys. Block j sits at index j + 1,
    after the position-embedding module; the MLP is ``ffn.layers.{0,3}`` (fc1, fc2). (mmdet's
    backbone has no classification entries, whatever `classifier` says.)"""
    return mmdet_layers_to_mmpvt(
        state_dict, layer_renames=(('attn.attn.out_proj.', 'attn.proj.'),
                                   ('ffn.layers.0.', 'mlp.fc1.'), ('ffn.layers.3.', 'mlp.fc2.')),
        first_block=1, stage_keys=((r'^1\.0\.pos_embed$', 'pos_embed'), )), []


_HF_LAYER_RENAMES = (
    ('attention.self.query.', 'attn.q.'),
    ('attention.self.sequence_reduction.', 'attn.sr.'),
    ('attention.self.layer_norm.', 'attn.norm.'),
    ('attention.output.dense.', 'attn.proj.'),
) + HF_BLOCK_RENAMES
_HF_EMBED_RENAMES = (('projection.', 'patch_embed.proj.'), ('layer_norm.', 'patch_embed.norm.'))


@layout(LAYOUTS, 'transformers', r'^(pvt\.)?encoder\.(patch_embeddings|block)\.\d+\.',
        example='pvt.encoder.patch_embeddings.0.projection.weight')
def transformers_to_mmpvt(state_dict: StateDict,
                          classifier: bool = False) -> Tuple[StateDict, List[str]]:
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


@layout(LAYOUTS, 'mmpvt', r'^stages\.\d+\.(patch_embed\.|pos_embed$|blocks\.)',
        example='stages.0.patch_embed.proj.weight')
def mmpvt_to_mmpvt(state_dict: StateDict, classifier: bool = False) -> Tuple[StateDict, List[str]]:
    return _fit(((k, k, v) for k, v in state_dict.items()), classifier)


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
    name = next((n for n, a in PVT_ARCHS.items() if all(list(a[k]) == arch[k] for k in arch)), None)
    return dict(arch=arch, name=name)


# The family's record; classifier=: the authors' classifier, the class token after the final norm
# into the linear head.
FAMILY = register_family(
    Family(name='PVT', encoder=PVT, archs=PVT_ARCHS, default_arch='small', marker=MARKER,
           layouts=LAYOUTS, to_official=mmpvt_to_official, infer_arch=infer_arch,
           classifier=dict(backbone=dict(out_type='cls_token'), neck=None)))
