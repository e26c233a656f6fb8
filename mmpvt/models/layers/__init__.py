"""Building blocks shared by PVT v1 and PVTv2: patch embedding, attention, feed-forward, layer."""
from .attention import SpatialReductionAttention, check_head_split
from .block import PVTBlock, run_blocks
from .dwconv import depthwise_conv
from .embed import (BLOCK_NORM_EPS, PATCH_NORM_EPS, OverlapPatchEmbed, PatchEmbed, map_to_tokens,
                    pad_to_multiple, resize_pos_embed, tokens_to_map, tracing_shapes)
from .ffn import ConvFeedForward, DepthwiseConv, FeedForward

__all__ = [
    'SpatialReductionAttention', 'check_head_split', 'PVTBlock', 'run_blocks', 'BLOCK_NORM_EPS',
    'PATCH_NORM_EPS',
    'OverlapPatchEmbed', 'PatchEmbed', 'map_to_tokens', 'pad_to_multiple', 'resize_pos_embed',
    'tokens_to_map', 'tracing_shapes',
    'ConvFeedForward', 'DepthwiseConv', 'FeedForward', 'depthwise_conv'
]
