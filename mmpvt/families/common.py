"""What PVT v1 and PVTv2 share, in plain PyTorch: the layer norms' eps, stochastic depth,
spatial-reduction attention, the v1 feed-forward, the encoder layer, arch parsing, the pyramid's
stage loop, and the record that describes a family (:class:`Family`, registered with
:func:`register_family`).

A family module (:mod:`.pvt_v1`, :mod:`.pvt_v2`) adds what it alone has (its patch embedding,
position information, feed-forward, stage and checkpoint layouts) and registers one
:class:`Family`; conversion, the tools and the tests iterate :data:`FAMILIES`.
"""
import logging
import math
import numbers
from typing import (Callable, Dict, List, Mapping, NamedTuple, Optional, Pattern, Sequence, Tuple,
                    Union)

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from .. import ops
from ..ops import Grid
from ..torch_compat import autocast_dtype, autocast_enabled

PATCH_NORM_EPS = 1e-5  # patch_embed*.norm and attn.norm: nn.LayerNorm's default in both releases
BLOCK_NORM_EPS = 1e-6  # block norm1/norm2 (v1, v2) and the per-stage norm (v2)
# mmdet's PyramidVisionTransformer(V2) builds every LayerNorm from norm_cfg=dict(type='LN',
# eps=1e-6): its zoo models were trained with that eps in patch embedding and reduction too
MMDET_NORM_EPS = 1e-6

# Information lines (frozen stages, conversions). The OpenMMLab side forwards them to mmengine's
# current logger; in a plain PyTorch program they follow Python's logging configuration.
log = logging.getLogger('mmpvt')

ArchSpec = Union[str, dict]
StateDict = Dict[str, Tensor]


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability `p` and
    scale the kept ones by 1 / (1 - p); the identity in eval mode.

    Shapes: (B, ...) -> (B, ...).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.drop_prob = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.drop_prob == 0:
            return x
        keep = 1 - self.drop_prob
        mask = (keep + torch.rand(
            (x.shape[0], ) + (1, ) * (x.dim() - 1), dtype=x.dtype, device=x.device)).floor_()
        return x / keep * mask

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


def trunc_normal_(tensor: Tensor, std: float, bound: float = 2.0) -> Tensor:
    """Fill `tensor` in place with N(0, std^2) truncated to [-bound, bound] (absolute bounds, as
    the authors' code calls timm's), by inverse-CDF sampling: uniform over the truncated CDF's
    range, erfinv, scale. For a given seed these are the draws of timm's and mmengine's
    ``trunc_normal_`` (torch 2.14's ``nn.init.trunc_normal_`` draws other numbers)."""

    def cdf(v: float) -> float:
        return (1.0 + math.erf(v / std / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        tensor.uniform_(2 * cdf(-bound) - 1, 2 * cdf(bound) - 1).erfinv_()
        return tensor.mul_(std * math.sqrt(2.0)).clamp_(-bound, bound)


def dropout(p: float) -> nn.Module:
    """nn.Dropout(p), or the identity for p = 0 (no call in the hot path)."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


def check_head_split(embed_dims: int, num_heads: int, owner: str = '') -> None:
    """ValueError (prefixed with `owner`) unless `embed_dims` splits evenly into `num_heads`."""
    if embed_dims % num_heads:
        raise ValueError(f'{owner}embed_dims ({embed_dims}) must be divisible by num_heads '
                         f'({num_heads})')


LINEAR_SRA_POOL = 7  # PVTv2 linear SRA: keys/values always come from a 7 x 7 grid


class SpatialReductionAttention(nn.Module):
    """Multi-head attention whose keys and values come from a spatially reduced input.

    Eq. (1)-(4) of the PVT paper: queries from every token, keys and values from a spatially
    reduced copy of the input, so attention costs N x N / R^2 instead of N x N. Reduction SR(x):

    * ``linear=False`` (v1, v2 b0-b5): LayerNorm(Conv_RxR,stride R(x)), the R x R patch projection
      W^S of eq. (3) as a convolution (checkpoint keys ``sr``, ``norm``); none for R == 1. Grids
      that R does not divide are zero-padded right/bottom (K/V grid ceil(h/R) x ceil(w/R)) where
      the authors' convolution would drop the last rows/columns or, for grids smaller than R, fail;
      on divisible grids (every stage once inputs are padded to 32) it is their computation.
    * ``linear=True`` (v2 b2-li, "linear SRA"): GELU(LayerNorm(Conv_1x1(AdaptiveAvgPool_7(x)))),
      49 K/V tokens whatever the input size, in every stage (sr_ratio is not used).

    Both LayerNorms use eps 1e-5, as the official checkpoints were trained. The product runs
    through ``F.scaled_dot_product_attention``: fused kernels that never keep an N x M attention
    matrix for backward (mmdet's port materialises and averages one).

    Args:
        embed_dims: width C (divisible by num_heads).
        num_heads: heads; head dim d = C / num_heads and the scale is d^-0.5.
        sr_ratio: R (ignored in linear mode). Default 1.
        qkv_bias: bias in the q and kv projections (True in every official model).
        linear: linear SRA (PVTv2 b2-li). Default False.
        attn_drop: dropout on the attention weights (training only). Default 0.
        proj_drop: dropout after the output projection. Default 0.

    Shapes: tokens (B, h*w, C) with grid (h, w) -> (B, h*w, C).
    """

    def __init__(self, embed_dims: int, num_heads: int, sr_ratio: int = 1, qkv_bias: bool = True,
                 linear: bool = False, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        check_head_split(embed_dims, num_heads)
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.linear = linear
        self.attn_drop = attn_drop
        # Separate q and kv projections (not one qkv) because K/V see the reduced input; the
        # kv output is laid out (2, heads, head_dim), k first, as in the official checkpoints.
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = dropout(proj_drop)
        if linear:
            self.sr = nn.Conv2d(embed_dims, embed_dims, 1)
            self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)
            self.act = nn.GELU()
        elif sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)

    def reduce(self, x: Tensor, hw: Grid) -> Tensor:
        """SR(x): (B, h*w, C) -> (B, M, C) with M = 49 (linear) or ceil(h/R) * ceil(w/R)."""
        if self.linear:
            pooled = ops.adaptive_avg_pool(ops.tokens_to_map(x, hw), LINEAR_SRA_POOL)
            return self.act(self.norm(ops.map_to_tokens(self.sr(pooled))))
        if self.sr_ratio == 1:
            return x
        x = self.sr(ops.pad_to_multiple(ops.tokens_to_map(x, hw), self.sr_ratio))
        return self.norm(ops.map_to_tokens(x))

    def forward(self, x: Tensor, hw: Grid) -> Tensor:
        B, N, C = x.shape
        heads = self.num_heads
        q = self.q(x).unflatten(-1, (heads, -1)).transpose(1, 2)  # B, heads, N, d
        kv = self.kv(self.reduce(x, hw)).unflatten(-1, (2, heads, -1))  # B, M, 2, heads, d
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # B, heads, M, d
        x = F.scaled_dot_product_attention(  # softmax(qk^T/sqrt d)v
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))


class FeedForward(nn.Module):
    """PVT v1 feed-forward: fc1 (C -> hidden), GELU, [dropout], fc2 (hidden -> C), [dropout].

    GELU and fc2 run through :func:`mmpvt.ops.conv_gelu_linear` (fused, or the plain ops when
    switched off); with dropout active (training, `drop` > 0) through the plain ops.
    PVTv2's :class:`~mmpvt.families.pvt_v2.ConvFeedForward` adds a depth-wise conv before GELU
    by overriding :meth:`hidden` and :meth:`spatial_conv`.

    Args:
        embed_dims: input/output width C. hidden_dims: fc1's output width.
        drop: dropout after GELU and after fc2 (the authors' ``drop_rate``). Default 0.

    Shapes: (B, N, C) -> (B, N, C); `hw` (the token grid) is accepted and unused in v1.
    """

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = dropout(drop)

    def hidden(self, x: Tensor) -> Tensor:
        """fc1 and whatever precedes the spatial conv, in the compute dtype (autocast's, so that
        the fused tail runs in it too)."""
        h = self.fc1(x)
        if autocast_enabled(h.device.type):
            h = h.to(autocast_dtype(h.device.type))
        return h

    def spatial_conv(self) -> Optional[nn.Conv2d]:
        """The depth-wise conv between fc1 and GELU (v2), or None (v1)."""
        return None

    def forward(self, x: Tensor, hw: Optional[Grid] = None) -> Tensor:
        h = self.hidden(x)
        conv = self.spatial_conv()
        if self.training and isinstance(self.drop, nn.Dropout):  # dropout inside: plain ops
            a = h if conv is None else ops.depthwise_conv(h, hw, conv.weight, conv.bias,
                                                          conv.groups, conv.kernel_size[0])
            return self.drop(self.fc2(self.drop(F.gelu(a))))
        return self.drop(ops.conv_gelu_linear(h, hw, conv, self.fc2))


class PVTBlock(nn.Module):
    """Pre-norm encoder layer: x = x + DropPath(SRA(LN(x))); x = x + DropPath(FFN(LN(x))).

    The families differ only in the feed-forward they pass in (`mlp`: v1's
    :class:`FeedForward`, v2's ``ConvFeedForward``) and in the attention's `linear` flag.

    Args:
        embed_dims: width C. num_heads, sr_ratio, linear, qkv_bias, attn_drop: of the attention.
        mlp: the feed-forward, a module mapping (tokens, grid) -> tokens of width C.
        drop_path: stochastic-depth probability of this layer. Default 0.
        proj_drop: dropout after the attention's output projection. Default 0.

    Shapes: (B, h*w, C) with grid (h, w) -> (B, h*w, C). LayerNorm eps 1e-6 (official).
    """

    def __init__(self, embed_dims: int, num_heads: int, sr_ratio: int, mlp: nn.Module,
                 drop_path: float = 0.0, linear: bool = False, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        self.attn = SpatialReductionAttention(embed_dims, num_heads, sr_ratio, qkv_bias=qkv_bias,
                                              linear=linear, attn_drop=attn_drop,
                                              proj_drop=proj_drop)
        self.norm2 = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        self.mlp = mlp
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, hw: Grid) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.mlp(self.norm2(x), hw))


def run_blocks(blocks: Sequence[nn.Module], x: Tensor, hw: Grid, with_cp: bool) -> Tensor:
    """Apply the layers in order; with `with_cp` and autograd on, each layer is checkpointed
    (its activations recomputed in backward instead of kept)."""
    checkpointing = with_cp and torch.is_grad_enabled()
    for block in blocks:
        if checkpointing:
            x = cp.checkpoint(block, x, hw, use_reentrant=False)
        else:
            x = block(x, hw)
    return x


# ---------------------------------------------------------------------------------------------
# Arch parsing


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def parse_arch(arch: ArchSpec, family: str, settings: Mapping[str, dict],
               per_stage_keys: Sequence[str], flags: Optional[Dict[str, bool]] = None) -> dict:
    """Validate `arch` (a variant name or a dict) into a dict of per-stage tuples (+ flags).

    per_stage_keys: keys holding one value per stage; ``embed_dims``, ``depths``,
    ``num_heads``, ``sr_ratios``, ``patch_sizes`` must be positive integers, ``mlp_ratios``
    positive numbers. flags: optional boolean keys with their defaults (e.g. PVTv2's ``linear``).
    """
    flags = dict(flags or {})
    if isinstance(arch, str):
        if arch not in settings:
            raise ValueError(f'Unknown {family} arch {arch!r}; expected one of '
                             f'{sorted(settings)} or a dict with keys {list(per_stage_keys)}' +
                             (f' (optional: {list(flags)})' if flags else ''))
        arch = settings[arch]
    elif not isinstance(arch, dict):
        raise TypeError(f'{family} arch must be a str or a dict, got {type(arch).__name__}')
    missing = [k for k in per_stage_keys if k not in arch]
    extra = [k for k in arch if k not in per_stage_keys and k not in flags]
    if missing or extra:
        raise ValueError(f'Custom {family} arch needs the keys {list(per_stage_keys)}' +
                         (f' (optional: {list(flags)})' if flags else '') +
                         f'; missing {missing}, unexpected {extra}')
    parsed = {}
    for key in per_stage_keys:
        value = arch[key]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f'{family} arch: {key} must be a list with one value per stage, '
                            f'got {value!r}')
        parsed[key] = tuple(value)
    lengths = {k: len(v) for k, v in parsed.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f'{family} arch: every entry needs one value per stage (and at least '
                         f'one stage), got lengths {lengths}')
    for key, values in parsed.items():
        check = ((lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0)
                 if key == 'mlp_ratios' else (lambda v: _is_int(v) and v > 0))
        bad = [v for v in values if not check(v)]
        if bad:
            kind = 'positive numbers' if key == 'mlp_ratios' else 'positive integers'
            raise ValueError(f'{family} arch: {key} must be {kind}, got {list(values)}')
    for i, (c, h) in enumerate(zip(parsed['embed_dims'], parsed['num_heads'])):
        if c % h:
            raise ValueError(f'{family} arch: stage {i} embed_dims {c} is not divisible by '
                             f'num_heads {h}')
    for key, default in flags.items():
        value = arch.get(key, default)
        if not isinstance(value, bool):
            raise TypeError(f'{family} arch: {key} must be True or False, got {value!r}')
        parsed[key] = value
    return parsed


def drop_path_schedule(rate: float, depths: Sequence[int]) -> List[List[float]]:
    """Per-stage stochastic-depth rates rising linearly from 0 (first layer) to `rate` (last)."""
    total = sum(depths)
    rates = [rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
    out, start = [], 0
    for d in depths:
        out.append(rates[start:start + d])
        start += d
    return out


# ---------------------------------------------------------------------------------------------
# The pyramid


class PyramidVisionTransformer(nn.Module):
    """What a family's encoder shares: argument checks, the stage loop, freezing, the authors'
    random initialisation and input checks.

    A family subclasses it, sets ``family`` (its name, for messages), calls this ``__init__``,
    appends its stages to ``self.stages`` (modules mapping a (B, C_in, H, W) map to (B, h*w, C)
    tokens and their grid), then calls :meth:`finish` (the authors' random initialisation).

    Weights of any known layout (the authors', mmdet's, timm's, transformers') load with
    ``model.load_state_dict(convert_to_mmpvt(state_dict).state_dict)``
    (:func:`mmpvt.families.convert_to_mmpvt`); the OpenMMLab backbones (:mod:`mmpvt.models`) add
    ``init_cfg`` and strict loading through every mmengine loader.

    Args:
        num_stages: how many stages the arch has.
        in_channels: input channels.
        out_indices: stage outputs (0-based) to return, in the order given; an int selects one.
            Stages after the last one returned are not run and not trained (requires_grad=False,
            eval mode), as if frozen.
        drop_rate: dropout after the attention's projection and in the feed-forward (and, in
            v1, after the position embedding), as the authors' ``drop_rate``.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth of the last layer, in [0, 1), rising linearly from 0.
        frozen_stages: stages 1..k get requires_grad=False and stay in eval mode; -1 or 0
            freezes nothing.
        with_cp: activation checkpointing per layer.
    """

    family = 'PVT'
    # Whether the encoder holds a classifier's class token (PVT v1, out_type='cls_token'): then
    # checkpoints keep their class token, final norm and class-token position when loaded.
    with_cls_token = False

    def __init__(self, num_stages: int, in_channels: int, out_indices: Union[int, Sequence[int]],
                 drop_rate: float, attn_drop_rate: float, drop_path_rate: float, frozen_stages: int,
                 with_cp: bool) -> None:
        super().__init__()
        name = self.family
        if not _is_int(in_channels) or in_channels < 1:
            raise ValueError(f'{name}: in_channels must be a positive integer, got '
                             f'{in_channels!r}')
        if _is_int(out_indices):
            out_indices = (out_indices, )
        if not isinstance(out_indices, (list, tuple)):
            raise TypeError(f'{name}: out_indices must be an int or a sequence of stage indices, '
                            f'got {out_indices!r}')
        out_indices = tuple(out_indices)
        if (not out_indices or not all(_is_int(i) and 0 <= i < num_stages for i in out_indices)
                or len(set(out_indices)) != len(out_indices)):
            raise ValueError(f'{name}: out_indices must be distinct stage indices in '
                             f'[0, {num_stages - 1}], got {out_indices}')
        for arg, value in (('drop_rate', drop_rate), ('attn_drop_rate', attn_drop_rate),
                           ('drop_path_rate', drop_path_rate)):
            if not isinstance(value, numbers.Real) or isinstance(value, bool) \
                    or not 0 <= value < 1:
                raise ValueError(f'{name}: {arg} must be in [0, 1), got {value!r}')
        if not _is_int(frozen_stages) or not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'{name}: frozen_stages must be an integer in [-1, {num_stages}], '
                             f'got {frozen_stages!r}')
        if not isinstance(with_cp, bool):
            raise TypeError(f'{name}: with_cp must be True or False, got {with_cp!r}')
        self.in_channels = in_channels
        self.out_indices = out_indices
        if max(out_indices) < num_stages - 1:
            log.info(f'{name}: out_indices {out_indices} returns nothing of stages '
                     f'{list(range(max(out_indices) + 1, num_stages))}: they are not run and '
                     'not trained (requires_grad=False)')
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp
        self.stages = nn.ModuleList()

    def finish(self) -> None:
        """After the stages are built: the authors' random initialisation, then freezing."""
        self.reset_parameters()
        self._freeze_stages()

    def reset_parameters(self) -> None:
        """The authors' initialisation: trunc-normal(0.02) linears, unit LayerNorms and
        He-normal convolutions with fan-out = k*k*C_out/groups (PVTv2's; PVT v1 overrides the
        convolutions)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def adapt_state_dict(self, state_dict: StateDict) -> Tuple[StateDict, List[str]]:
        """A converted (mmpvt-layout) state dict fitted to this encoder where the family allows a
        difference (v1: position tables of another grid are resized), with one note per change.
        Here: unchanged."""
        return state_dict, []

    def _unused_stages(self) -> List[int]:
        """The stages after the last one ``out_indices`` returns: never run, so never trained."""
        return list(range(max(self.out_indices) + 1, len(self.stages)))

    def _freeze_stages(self) -> None:
        """Stages 1..``frozen_stages`` and the unused stages after the last returned one get
        requires_grad=False and stay in eval mode. The unused ones keep their parameters (a full
        checkpoint loads as it is) but take no part in training: DistributedDataParallel (with
        mmengine's find_unused_parameters=False) stops at the second iteration on a trainable
        parameter that gets no gradient."""
        unused = self._unused_stages()
        for i, stage in enumerate(self.stages):
            if i < self.frozen_stages or i in unused:
                stage.eval()
                for p in stage.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> 'PyramidVisionTransformer':
        super().train(mode)
        self._freeze_stages()
        return self

    def __prepare_scriptable__(self):
        # torch.jit.script calls this first: one sentence instead of TorchScript's 30-line error
        raise RuntimeError(f'{self.family} cannot be compiled with torch.jit.script (TorchScript '
                           'is not supported: the backbone takes size-dependent Python paths). '
                           'Use torch.export.export, torch.compile or the ONNX export '
                           '(tools/deploy/export_onnx.py) instead.')

    def _check_input(self, x) -> None:
        name, c = self.family, self.in_channels
        if not isinstance(x, Tensor):
            raise TypeError(f'{name} expects a (B, {c}, H, W) tensor, got {type(x).__name__}')
        # While an exporter traces, sizes are traced values and a comparison on them would be
        # frozen into the graph (a TracerWarning): only the rank is checked then.
        bad_size = not ops.tracing_shapes() and (x.shape[1] != c or x.shape[2] < 1
                                                 or x.shape[3] < 1)
        if x.dim() != 4 or bad_size:
            raise ValueError(f'{name} expects a (B, {c}, H, W) tensor with H, W >= 1, got shape '
                             f'{tuple(x.shape)}')
        if not x.is_floating_point():
            raise TypeError(f'{name} expects a floating-point (normalised) image tensor, got '
                            f'dtype {x.dtype}; convert and normalise it first (the mmdet/mmseg '
                            'data preprocessor does)')
        weight_dtype = self.stages[0].patch_embed.proj.weight.dtype
        if x.dtype != weight_dtype and not autocast_enabled(x.device.type):
            raise TypeError(f'{name}: input dtype {x.dtype} differs from the weights\' '
                            f'{weight_dtype}; use x.to({weight_dtype}), model.to({x.dtype}) or '
                            'autocast')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, C_in, H, W) -> the maps of the stages in ``out_indices``, in that order."""
        self._check_input(x)
        outs = {}
        last = max(self.out_indices)
        for i, stage in enumerate(self.stages[:last + 1]):  # later stages are not needed
            tokens, hw = stage(x)
            x = ops.tokens_to_map(tokens, hw)  # a view: the next patch embedding reads it as is
            if i in self.out_indices:
                outs[i] = x.contiguous()
        return tuple(outs[i] for i in self.out_indices)


# ---------------------------------------------------------------------------------------------
# The family record

Converter = Callable[..., Tuple[StateDict, List[str]]]


class Layout(NamedTuple):
    """A checkpoint layout of a family: `signature` matches keys only this layout has (within the
    family), `to_mmpvt(state_dict, classifier=False)` -> (mmpvt-layout state dict, dropped
    classification-only entries); `example`: one of its keys, for messages.
    `layer_norm_eps`: the eps of every LayerNorm where the code that trains in this layout
    computes with one eps throughout (mmdet's ports: :data:`MMDET_NORM_EPS`), else None (the
    authors' eps, which their releases were trained with)."""
    signature: Pattern
    to_mmpvt: Converter
    example: str
    layer_norm_eps: Optional[float] = None


class Family(NamedTuple):
    """What a family is, once, for conversion, the OpenMMLab side, the tools and the tests.

    name: the family's name, also its registered backbone type (``type='mmpvt.<name>'``).
    encoder: its plain PyTorch encoder class, built as ``encoder(arch, **kwargs)``.
    archs: its named variants (per-stage settings). default_arch: the encoder's default.
    marker: matches keys only this family's checkpoints have, in any of its layouts.
    layouts: layout name -> :class:`Layout` (``'mmpvt'`` is the encoder's own names).
    to_official: mmpvt-layout state dict -> the authors' names.
    infer_arch: mmpvt-layout state dict -> dict(arch=per-stage settings, name=variant or None).
    classifier: the family as an ImageNet classifier (mmpretrain's ImageClassifier):
        dict(backbone=encoder keyword arguments, neck=the neck's config or None).
    """
    name: str
    encoder: type
    archs: Mapping[str, dict]
    default_arch: str
    marker: Pattern
    layouts: Mapping[str, Layout]
    to_official: Callable[[StateDict], StateDict]
    infer_arch: Callable[[StateDict], dict]
    classifier: Mapping[str, Optional[dict]]


FAMILIES: Dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add `family` to :data:`FAMILIES`; ValueError if its name or a variant name is taken."""
    if family.name in FAMILIES:
        raise ValueError(f'A family named {family.name!r} is already registered')
    taken = {a: f.name for f in FAMILIES.values() for a in f.archs if a in family.archs}
    if taken:
        raise ValueError(f'Family {family.name}: variant names already used by other families: '
                         f'{taken}')
    if 'mmpvt' not in family.layouts:
        raise ValueError(f"Family {family.name}: needs an 'mmpvt' layout (the encoder's own "
                         'names)')
    FAMILIES[family.name] = family
    return family


def family_of(arch: str) -> Family:
    """The family a variant name belongs to; ValueError listing every family's names."""
    for family in FAMILIES.values():
        if arch in family.archs:
            return family
    known = ' or a '.join(f'{f.name} arch {sorted(f.archs)}' for f in FAMILIES.values())
    raise ValueError(f'Unknown arch {arch!r}: expected a {known}')


def arch_names() -> List[str]:
    """Every registered family's variant names, family by family."""
    return [arch for family in FAMILIES.values() for arch in family.archs]


def build_encoder(arch: str, **kwargs) -> PyramidVisionTransformer:
    """The plain encoder of variant `arch` (any registered family); `kwargs` go to its class."""
    return family_of(arch).encoder(arch, **kwargs)
