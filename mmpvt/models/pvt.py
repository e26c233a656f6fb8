"""Pyramid Vision Transformer (PVT v1), Wang et al., ICCV 2021.

The file reads bottom-up, as the paper builds the network (Sec. 3, Table 1):

    PatchEmbed -> SpatialReductionAttention -> PVTBlock -> PVTStage -> PVT (+ ARCH_SETTINGS)

Choices that differ from a literal transcription of the authors' code, and why:

* Sizes that a patch size does not divide are zero-padded at the right/bottom instead of floored,
  so no border pixel is dropped: stage outputs are ceil(H/4), ceil(H/8), ceil(H/16), ceil(H/32).
  For divisible sizes (always the case after mmdet/mmseg pad inputs to 32) nothing changes.
* The K/V spatial reduction (an R x R, stride R convolution) pads its grid the same way, so grids
  that R does not divide, or that are smaller than R, give a ceil(h/R) x ceil(w/R) K/V grid
  instead of dropping tokens (or crashing, as the authors' code does for grids smaller than R).
* Attention runs through ``F.scaled_dot_product_attention`` (fused kernels, no N x M attention
  matrix kept for backward on CPU or GPU); numerically it is eq. (4).
* LayerNorm eps follows what the official checkpoints were trained with: 1e-6 in the blocks,
  1e-5 in patch embedding and in the K/V reduction. (mmdet's port uses 1e-6 everywhere, which
  moves its features about 2e-4 away from the official model's.)
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor, nn

# Table 1 of the paper. Every variant shares patch sizes, widths, heads, reduction ratios and
# expansion ratios; only the depths differ.
_COMMON = dict(
    embed_dims=(64, 128, 320, 512),
    num_heads=(1, 2, 5, 8),
    mlp_ratios=(8, 8, 4, 4),
    sr_ratios=(8, 4, 2, 1),
    patch_sizes=(4, 2, 2, 2),
)
ARCH_SETTINGS: Dict[str, dict] = {
    'tiny': dict(_COMMON, depths=(2, 2, 2, 2)),
    'small': dict(_COMMON, depths=(3, 4, 6, 3)),
    'medium': dict(_COMMON, depths=(3, 4, 18, 3)),
    'large': dict(_COMMON, depths=(3, 8, 27, 3)),
}
ARCH_KEYS = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios', 'patch_sizes')

PATCH_NORM_EPS = 1e-5  # patch_embed{i}.norm and attn.norm in the official checkpoints
BLOCK_NORM_EPS = 1e-6  # block{i}.{j}.norm1 / norm2


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad a (B, C, H, W) map at the right/bottom so H and W are multiples of `multiple`."""
    pad_h = -x.shape[-2] % multiple
    pad_w = -x.shape[-1] % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


def tokens_to_map(x: Tensor, hw: Tuple[int, int]) -> Tensor:
    """(B, H*W, C) tokens -> (B, C, H, W) view (channels-last strides, no copy)."""
    return x.transpose(1, 2).unflatten(2, hw)


def resize_pos_embed(pos_embed: Tensor, src_hw: Tuple[int, int],
                     dst_hw: Tuple[int, int]) -> Tensor:
    """Bilinearly resize a (1, h*w, C) position table from grid `src_hw` to `dst_hw`.

    align_corners=False, as in the authors' code, so official checkpoints give official features.
    """
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    grid = tokens_to_map(pos_embed, src_hw)
    grid = F.interpolate(grid, size=dst_hw, mode='bilinear', align_corners=False)
    return grid.flatten(2).transpose(1, 2)


class PatchEmbed(nn.Module):
    """Linear projection of non-overlapping P x P patches, then LayerNorm (Sec. 3.2).

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

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x = self.proj(pad_to_multiple(x, self.patch_size))
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw


class SpatialReductionAttention(nn.Module):
    """Multi-head attention whose keys and values come from a spatially reduced input, eq. (1)-(4).

    SR(x) = LayerNorm(Conv_RxR,stride R(x)): the R x R patch projection W^S of eq. (3) is exactly a
    convolution with kernel = stride = R (as in the official checkpoints, key `sr`). For R == 1 there
    is no reduction and no `sr`/`norm` parameters.

    Args:
        embed_dims: width C (divisible by num_heads).
        num_heads: N_i; head dim d = C / N_i and the scale is d^-0.5.
        sr_ratio: R_i.
        qkv_bias: bias in the q and kv projections (True in every official model).

    Shapes: tokens (B, h*w, C) with grid (h, w) -> (B, h*w, C). K/V has ceil(h/R) * ceil(w/R) tokens.
    """

    def __init__(self, embed_dims: int, num_heads: int, sr_ratio: int = 1,
                 qkv_bias: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads '
                             f'({num_heads})')
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        # Separate q and kv projections (not one qkv) because K/V see the reduced input; the
        # kv output is laid out (2, heads, head_dim), k first, as in the official checkpoints.
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(embed_dims, eps=PATCH_NORM_EPS)

    def reduce(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        """SR(x) of eq. (3): (B, h*w, C) -> (B, ceil(h/R) * ceil(w/R), C)."""
        if self.sr_ratio == 1:
            return x
        x = self.sr(pad_to_multiple(tokens_to_map(x, hw), self.sr_ratio))
        return self.norm(x.flatten(2).transpose(1, 2))

    def forward(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        B, N, C = x.shape
        heads = self.num_heads
        q = self.q(x).unflatten(-1, (heads, -1)).transpose(1, 2)          # B, heads, N, d
        kv = self.kv(self.reduce(x, hw)).unflatten(-1, (2, heads, -1))    # B, M, 2, heads, d
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)                        # B, heads, M, d
        x = F.scaled_dot_product_attention(q, k, v)                       # softmax(qk^T/sqrt d)v
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class _GELULinear(torch.autograd.Function):
    """fc2(GELU(h)) for training that keeps only `h` for backward and recomputes GELU(h) there.

    Autograd would keep both FC1's output and GELU's output: two (N, hidden) tensors per block,
    the largest activations of PVT (hidden = 8C in stages 1-2). Recomputing the elementwise GELU
    in backward costs little and drops one of them.
    """

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(h, weight)
        return F.linear(F.gelu(h), weight.to(h.dtype), bias.to(h.dtype))

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        h, weight = ctx.saved_tensors
        grad_out = grad_out.to(h.dtype)
        rows = grad_out.reshape(-1, grad_out.shape[-1])
        grad_weight = rows.t() @ F.gelu(h).reshape(-1, h.shape[-1])
        grad_h = torch.ops.aten.gelu_backward(grad_out @ weight.to(h.dtype), h)
        return grad_h, grad_weight.to(weight.dtype), rows.sum(0).to(weight.dtype)


class FeedForward(nn.Module):
    """FC1 (C -> hidden), GELU, FC2 (hidden -> C); shapes (B, N, C) -> (B, N, C).

    Same function in every mode, implemented for the mode's bottleneck (both measured on CPU):
    at inference GELU runs in place on FC1's output (bit-identical; not allocating another
    (N, hidden) tensor, 136 MB per stage-1 block at 800x1333, makes the MLP ~1.6x faster); in
    training :class:`_GELULinear` keeps one (N, hidden) activation instead of two.
    """

    def __init__(self, embed_dims: int, hidden_dims: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        recording = torch.is_grad_enabled() and (h.requires_grad or self.fc2.weight.requires_grad)
        if not recording:
            return self.fc2(torch.ops.aten.gelu_(h))
        if torch.is_autocast_enabled(h.device.type):  # FC2 runs in the autocast dtype
            h = h.to(torch.get_autocast_dtype(h.device.type))
        return _GELULinear.apply(h, self.fc2.weight, self.fc2.bias)


class PVTBlock(nn.Module):
    """Transformer encoder layer of PVT: pre-norm SRA and feed-forward, each with a residual.

    x = x + DropPath(SRA(LN(x))); x = x + DropPath(FC2(GELU(FC1(LN(x))))), FC1 widening C -> E*C.
    Shapes: (B, h*w, C) -> (B, h*w, C).
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, sr_ratio: int,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        hidden = int(embed_dims * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        self.attn = SpatialReductionAttention(embed_dims, num_heads, sr_ratio)
        self.norm2 = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        self.mlp = FeedForward(embed_dims, hidden)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PVTStage(nn.Module):
    """One pyramid stage: patch embedding, absolute position embedding, L_i encoder layers.

    The position table lives on the pre-training grid `pos_grid` (224 px: 56², 28², 14², 7²) and is
    resized to the actual grid of each input. At inference (no autograd) the resized table is
    cached per (grid, dtype, device); the cache is keyed by the parameter's version counter, so
    loading new weights invalidates it.

    Shapes: (B, C_in, H, W) -> tokens (B, h*w, C) and (h, w) = (ceil(H/P), ceil(W/P)).
    """

    def __init__(self, in_channels: int, embed_dims: int, depth: int, num_heads: int,
                 mlp_ratio: float, sr_ratio: int, patch_size: int, pos_grid: Tuple[int, int],
                 drop_path_rates: Sequence[float], with_cp: bool = False) -> None:
        super().__init__()
        self.pos_grid = tuple(pos_grid)
        self.with_cp = with_cp
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid[0] * pos_grid[1], embed_dims))
        self.blocks = nn.ModuleList(
            PVTBlock(embed_dims, num_heads, mlp_ratio, sr_ratio, drop_path=dpr)
            for dpr in drop_path_rates)
        self._pos_cache: Dict[tuple, Tensor] = {}

    def pos_embed_for(self, hw: Tuple[int, int]) -> Tensor:
        """The position table resized to grid `hw`, (1, h*w, C)."""
        if hw == self.pos_grid:
            return self.pos_embed
        if torch.is_grad_enabled():
            return resize_pos_embed(self.pos_embed, self.pos_grid, hw)
        p = self.pos_embed
        key = (hw, p.dtype, p.device, p._version)
        cached = self._pos_cache.get(key)
        if cached is None:
            if len(self._pos_cache) >= 16:  # many distinct sizes: keep memory bounded
                self._pos_cache.clear()
            cached = self._pos_cache[key] = resize_pos_embed(p, self.pos_grid, hw)
        return cached

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x, hw = self.patch_embed(x)
        x = x + self.pos_embed_for(hw)
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, hw, use_reentrant=False)
            else:
                x = block(x, hw)
        return x, hw


def parse_arch(arch: Union[str, dict]) -> Dict[str, tuple]:
    """Validate `arch` (a Table 1 name or a dict of per-stage lists) into a dict of tuples."""
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise ValueError(f'Unknown PVT arch {arch!r}; expected one of '
                             f'{sorted(ARCH_SETTINGS)} or a dict with keys {list(ARCH_KEYS)}')
        return {k: tuple(v) for k, v in ARCH_SETTINGS[arch].items()}
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
    missing = [k for k in ARCH_KEYS if k not in arch]
    extra = [k for k in arch if k not in ARCH_KEYS]
    if missing or extra:
        raise ValueError(f'Custom PVT arch needs exactly the keys {list(ARCH_KEYS)}; '
                         f'missing {missing}, unexpected {extra}')
    parsed = {k: tuple(arch[k]) for k in ARCH_KEYS}
    lengths = {k: len(v) for k, v in parsed.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f'Custom PVT arch: every entry needs one value per stage, got lengths '
                         f'{lengths}')
    for i, (c, h) in enumerate(zip(parsed['embed_dims'], parsed['num_heads'])):
        if c % h:
            raise ValueError(f'Custom PVT arch: stage {i} embed_dims {c} is not divisible by '
                             f'num_heads {h}')
    return parsed


class PVT(BaseModule):
    """Pyramid Vision Transformer backbone (PVT v1) for mmdet and mmseg.

    Args:
        arch: 'tiny' | 'small' | 'medium' | 'large' (Table 1), or a dict with per-stage
            embed_dims, depths, num_heads, mlp_ratios, sr_ratios, patch_sizes. Default 'small'.
        pretrain_img_size: image size the position tables were learnt at (int or (H, W)); 224
            for the official checkpoints.
        in_channels: input channels. Default 3.
        out_indices: which stage outputs F1..F4 (0-based) to return. Default all four.
        drop_path_rate: stochastic depth of the last block; it rises linearly from 0. Default 0.1.
        frozen_stages: stages 1..k (patch embedding, position table, blocks) get
            requires_grad=False and stay in eval mode; -1 (default) or 0 freezes nothing.
        with_cp: activation checkpointing per block (saves memory, same outputs and gradients).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL[, prefix=...])`` loads official
            (whai362/PVT), mmdet 3.x or mmpvt weights, also wrapped in a detector/segmentor
            checkpoint; see :mod:`mmpvt.models.convert`. None: random initialisation.

    Shapes: (B, in_channels, H, W) -> tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)) for the selected
    stages, strides s = 4, 8, 16, 32 and C = 64, 128, 320, 512 for the paper's variants.
    """

    def __init__(self, arch: Union[str, dict] = 'small',
                 pretrain_img_size: Union[int, Tuple[int, int]] = 224, in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), drop_path_rate: float = 0.1,
                 frozen_stages: int = -1, with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = parse_arch(arch)
        num_stages = len(self.arch['depths'])
        if isinstance(pretrain_img_size, int):
            pretrain_img_size = (pretrain_img_size, pretrain_img_size)
        out_indices = tuple(out_indices)
        if not out_indices or any(not 0 <= i < num_stages for i in out_indices):
            raise ValueError(f'out_indices must be non-empty and within [0, {num_stages - 1}], '
                             f'got {out_indices}')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in [-1, {num_stages}], got {frozen_stages}')
        self.in_channels = in_channels
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.embed_dims = self.arch['embed_dims']

        depths = self.arch['depths']
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()  # linear rule
        self.stages = nn.ModuleList()
        stride, channels = 1, in_channels
        for i, depth in enumerate(depths):
            stride *= self.arch['patch_sizes'][i]
            self.stages.append(PVTStage(
                in_channels=channels, embed_dims=self.embed_dims[i], depth=depth,
                num_heads=self.arch['num_heads'][i], mlp_ratio=self.arch['mlp_ratios'][i],
                sr_ratio=self.arch['sr_ratios'][i], patch_size=self.arch['patch_sizes'][i],
                pos_grid=(pretrain_img_size[0] // stride, pretrain_img_size[1] // stride),
                drop_path_rates=dpr[sum(depths[:i]):sum(depths[:i + 1])], with_cp=with_cp))
            channels = self.embed_dims[i]
        self._freeze_stages()

    # ---------------------------------------------------------------------------------------
    def init_weights(self) -> None:
        """Random init (timm/official style), or load `init_cfg`'s checkpoint in any known layout.

        mmengine's generic 'Pretrained' initialiser loads with strict=False and would only log
        mismatches; we convert the layout first and refuse mismatched keys or shapes instead.
        """
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from .convert import load_pvt_checkpoint  # local import: convert imports this module
            load_pvt_checkpoint(self, cfg['checkpoint'], prefix=cfg.get('prefix'))
            self._is_init = True
            return
        if cfg is not None:
            super().init_weights()
            return
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
        for stage in self.stages:
            trunc_normal_(stage.pos_embed, std=0.02)
        self._is_init = True

    def _freeze_stages(self) -> None:
        for stage in self.stages[:max(self.frozen_stages, 0)]:
            stage.eval()
            for p in stage.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'PVT':
        super().train(mode)
        self._freeze_stages()
        return self

    # ---------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'PVT expects a (B, {self.in_channels}, H, W) tensor, got shape '
                             f'{tuple(x.shape)}')
        if x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f'PVT expects a (B, {self.in_channels}, H, W) tensor with H, W >= 1, '
                             f'got shape {tuple(x.shape)}')
        outs: List[Tensor] = []
        for i, stage in enumerate(self.stages):
            tokens, hw = stage(x)
            x = tokens_to_map(tokens, hw)  # a view: the next patch embedding reads it directly
            if i in self.out_indices:
                outs.append(x.contiguous())
        return tuple(outs)
