"""The transformer encoder layer shared by PVT v1 and PVTv2, and the loop that runs a stage's
layers."""
from typing import Iterable

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from .attention import SpatialReductionAttention
from .embed import BLOCK_NORM_EPS, Grid
from .ffn import ConvFeedForward, FeedForward


class PVTBlock(nn.Module):
    """Pre-norm encoder layer: x = x + DropPath(SRA(LN(x))); x = x + DropPath(FFN(LN(x))).

    What differs between the two families is only the choice of sub-modules:

    ==========  =====================================  =============================================
                attention                              feed-forward
    ==========  =====================================  =============================================
    v1          SRA, R x R reduction                   :class:`FeedForward` (fc1, GELU, fc2)
    v2          SRA, R x R reduction                   :class:`ConvFeedForward` (+ 3x3 depth-wise)
    v2 linear   linear SRA (7 x 7 pool)                :class:`ConvFeedForward` with ReLU
    ==========  =====================================  =============================================

    Args:
        embed_dims: width C. num_heads, sr_ratio: of the attention.
        mlp_ratio: hidden width of the FFN is int(C * mlp_ratio).
        drop_path: stochastic-depth probability of this layer.
        conv_ffn: use the v2 feed-forward. linear: use linear SRA (and the FFN's ReLU).
        qkv_bias: bias in the attention's q and kv projections (True in every PVT; the Trans2Seg
            head's encoder layers have none).

    Shapes: (B, h*w, C) with grid (h, w) -> (B, h*w, C). LayerNorm eps 1e-6 (official).
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, sr_ratio: int,
                 drop_path: float = 0.0, conv_ffn: bool = False, linear: bool = False,
                 qkv_bias: bool = True) -> None:
        super().__init__()
        hidden = int(embed_dims * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        self.attn = SpatialReductionAttention(embed_dims, num_heads, sr_ratio, qkv_bias=qkv_bias,
                                              linear=linear)
        self.norm2 = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        self.mlp = (ConvFeedForward(embed_dims, hidden, relu=linear) if conv_ffn
                    else FeedForward(embed_dims, hidden))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, hw: Grid) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), hw))
        return x + self.drop_path(self.mlp(self.norm2(x), hw))


def run_blocks(blocks: Iterable[nn.Module], x: Tensor, hw: Grid, with_cp: bool) -> Tensor:
    """Apply the layers in order; with `with_cp` and autograd on, each layer is checkpointed
    (its activations recomputed in backward instead of kept)."""
    checkpointing = with_cp and torch.is_grad_enabled()
    for block in blocks:
        if checkpointing:
            x = cp.checkpoint(block, x, hw, use_reentrant=False)
        else:
            x = block(x, hw)
    return x
