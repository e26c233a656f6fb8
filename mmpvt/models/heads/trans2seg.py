"""Trans2Seg (Xie et al., 2021), the transformer segmentation head of the PVT paper's Table 7
(PVT-S + Trans2Seg, 42.6 mIoU on ADE20K), as an mmseg 1.x decode head.

mmseg 1.2 has no Trans2Seg. Its nearest head, Segmenter's mask transformer, is a different
design (one encoder over patch and class tokens together, masks from a cosine product), so the
head is written here from the description of the original model::

    tokens map (B, C4, h, w) --Linear--> [cls] + tokens + position table --encoder--> F (B, hw, E)
    one query per class --decoder, cross-attention to F--> masks A (B, K, heads, hw), pre-softmax
    per class k: [F ; A_k] (E + heads ch) --SepConv, SepConv--> upsample to the skip's grid
                 + 1x1 conv of the stride-4 skip --SepConv--> 1x1 conv --> logits (B, K, H/4, W/4)

* Encoder: ``depth`` pre-norm layers (q/kv without bias, GELU feed-forward), then a LayerNorm;
  the class token is dropped afterwards.
* Decoder layer (``depth`` of them): the queries attend to the tokens; the attention's
  pre-softmax logits per head are the layer's masks. The layer then updates the queries and the
  tokens with feed-forwards, and the masks with a LayerNorm + feed-forward over the token grid
  (width h*w, hidden 3 h*w). The class queries are added again before every layer after the first.
  Only the last layer's masks reach the output.
* CNN decoder, per class: SepConv = depth-wise 3x3-BN-ReLU, point-wise 1x1-BN-ReLU.

Where the original code is written for one setting, this head is general:

* any number of classes (the original fixes 12, Trans10K's; ADE20K needs 150);
* any input size and aspect ratio: the original fixes square 512 px inputs, a 32 x 32 position
  table and a mask LayerNorm of width 1024. Here the position table and the mask LayerNorm /
  feed-forward live on ``token_grid`` (the token grid at the training crop, 16 x 16 for PVT at
  512 px); on another grid the table is resized bilinearly (align_corners=True, as the
  original), and the masks are resampled to ``token_grid`` for their update and the update back
  to the actual grid (on ``token_grid`` itself both resamplings are skipped: the original's
  computation);
* residuals are x + f(x) (the original's code reads x + drop_path(x), doubling the branch
  input instead);
* only what reaches the output is built and computed (``prune_unused``): the original computes
  masks in every decoder layer but uses the last layer's only, and also computes the last
  layer's query and token updates, which nothing reads. Pruned, the head computes the same
  function with 2.1M fewer parameters (medium settings at a 16 x 16 grid; 19.8M fewer at
  32 x 32), and every parameter gets a gradient, so distributed training needs no
  ``find_unused_parameters``.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmcv.cnn.bricks import DropPath
from mmengine.model.weight_init import normal_init, trunc_normal_
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor, nn

from ...families.common import BLOCK_NORM_EPS, FeedForward, PVTBlock, check_head_split
from ...ops import resize_pos_embed, tracing_shapes
from ...registry import MODELS

Grid = Tuple[int, int]


def resample_grid(x: Tensor, src: Grid, dst: Grid) -> Tensor:
    """Values on a flattened grid, (..., h*w) on `src`, bilinearly resampled to (..., h'*w') on
    `dst` (align_corners=False). The identity (and no call) when the grids are equal."""
    if not tracing_shapes() and tuple(src) == tuple(dst):
        return x
    lead = x.shape[:-1]
    y = F.interpolate(x.reshape(-1, 1, *src), size=tuple(dst), mode='bilinear', align_corners=False)
    return y.reshape(*lead, dst[0] * dst[1])


class ClassQueryAttention(nn.Module):
    """Multi-head cross-attention of K class queries to N tokens; its pre-softmax logits per head
    are Trans2Seg's masks.

    Args:
        embed_dims: width E (divisible by num_heads); head dim d = E / num_heads, scale d^-0.5.
        num_heads: heads; each head gives one mask per class.
        values: build the value and output projections (False: :meth:`logits` only).

    Shapes: queries (B, K, E), tokens (B, N, E) -> :meth:`logits` (B, K, heads, N),
    :meth:`forward` the attended queries (B, K, E). q, k, v have no bias; the output projection
    has.
    """

    def __init__(self, embed_dims: int, num_heads: int, values: bool = True) -> None:
        super().__init__()
        check_head_split(embed_dims, num_heads)
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.scale = (embed_dims // num_heads)**-0.5
        self.q = nn.Linear(embed_dims, embed_dims, bias=False)
        # k and v from one projection, laid out (2, heads, d) with k first as in the backbone's
        # attention; k alone without values.
        self.kv = nn.Linear(embed_dims, (2 if values else 1) * embed_dims, bias=False)
        self.proj = nn.Linear(embed_dims, embed_dims) if values else None

    def _logits(self, queries: Tensor, k: Tensor) -> Tensor:
        """(B, heads, K, N) logits of the queries against keys k (B, heads, N, d)."""
        q = self.q(queries).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # B, heads, K, d
        return (q * self.scale) @ k.transpose(-2, -1)

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # B, heads, N, d

    def logits(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """The masks: (B, K, heads, N) pre-softmax attention logits (the value half of the
        projection is not computed)."""
        k = F.linear(tokens, self.kv.weight[:self.embed_dims])
        return self._logits(queries, self._heads(k)).transpose(1, 2)

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """The attended queries, proj(softmax(logits) v): (B, K, E)."""
        if self.proj is None:
            raise RuntimeError('ClassQueryAttention(values=False) computes logits() only')
        B, K, E = queries.shape
        k, v = self.kv(tokens).chunk(2, dim=-1)
        out = self._logits(queries, self._heads(k)).softmax(-1) @ self._heads(v)  # B, heads, K, d
        return self.proj(out.transpose(1, 2).reshape(B, K, E))


class Trans2SegDecoderLayer(nn.Module):
    """One decoder layer: cross-attention of the class queries Q to the tokens F, whose logits A
    are the layer's masks, and feed-forward updates of the queries, the tokens and the masks:

        update (:meth:`forward`):  Q = Q + Attn(LN(Q), LN(F));  Q = Q + FFN(LN(Q));
                                   F = F + FFN(LN(F))
        masks (:meth:`masks`):     A = logits(LN(Q), LN(F));  A = A + up(FFN_g(LN_g(down(A))))

    down/up resample the masks between the actual grid and `token_grid`, on which the grid
    LayerNorm and feed-forward (width G = gh * gw, hidden mask_mlp_ratio * G) are defined.
    Only the last layer's masks reach the head's output, and the last layer's updates reach
    nothing: a layer is built with the parts it is used for (`updates`, `masks`).

    Args:
        embed_dims: E. num_heads: of the attention. mlp_ratio: hidden width of the query and token
            feed-forwards is int(E * mlp_ratio).
        token_grid: (gh, gw). mask_mlp_ratio: hidden width of the mask feed-forward, in units
            of G.
        drop_path: stochastic-depth probability of every residual branch.
        updates: build the value path and the query / token feed-forwards.
        masks: build the masks' LayerNorm and feed-forward.

    Shapes: queries (B, K, E), tokens (B, h*w, E) -> :meth:`forward` the updated queries and
    tokens; :meth:`masks` with the grid (h, w) -> (B, K, heads, h*w).
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, token_grid: Grid,
                 mask_mlp_ratio: float = 3.0, drop_path: float = 0.0, updates: bool = True,
                 masks: bool = True) -> None:
        super().__init__()
        self.token_grid = tuple(token_grid)
        grid_size = token_grid[0] * token_grid[1]
        hidden = int(embed_dims * mlp_ratio)
        self.norm_query = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        self.norm_tokens = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        self.attn = ClassQueryAttention(embed_dims, num_heads, values=updates)
        if updates:
            self.norm_query_ffn = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
            self.query_ffn = FeedForward(embed_dims, hidden)
            self.norm_tokens_ffn = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
            self.tokens_ffn = FeedForward(embed_dims, hidden)
        if masks:
            self.norm_masks = nn.LayerNorm(grid_size, eps=BLOCK_NORM_EPS)
            self.masks_ffn = FeedForward(grid_size, int(grid_size * mask_mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, queries: Tensor, tokens: Tensor) -> Tuple[Tensor, Tensor]:
        attended = self.attn(self.norm_query(queries), self.norm_tokens(tokens))
        queries = queries + self.drop_path(attended)
        queries = queries + self.drop_path(self.query_ffn(self.norm_query_ffn(queries)))
        tokens = tokens + self.drop_path(self.tokens_ffn(self.norm_tokens_ffn(tokens)))
        return queries, tokens

    def masks(self, queries: Tensor, tokens: Tensor, hw: Grid) -> Tensor:
        masks = self.attn.logits(self.norm_query(queries), self.norm_tokens(tokens))
        update = self.masks_ffn(self.norm_masks(resample_grid(masks, hw, self.token_grid)))
        return masks + self.drop_path(resample_grid(update, self.token_grid, hw))


@MODELS.register_module()
class Trans2SegHead(BaseDecodeHead):
    """Trans2Seg decode head (``type='mmpvt.Trans2SegHead'``): a transformer encoder-decoder on
    the coarsest feature map with one query per class, whose attention maps a small CNN turns
    into per-class logits at the skip level's stride (4 for PVT and ResNet stage 1).

    The original's three settings (defaults: medium):

    ========  ==========  =====  =========  =========  ========
    setting   embed_dims  depth  num_heads  mlp_ratio  channels
    ========  ==========  =====  =========  =========  ========
    small     128         1      4          2          32
    medium    256         4      8          3          64
    large     768         12     16         4          128
    ========  ==========  =====  =========  =========  ========

    Args:
        in_channels: (C_skip, C_tokens), the channels of the two inputs ``in_index`` selects.
            Default (64, 512): PVT v1 stage 1 and stage 4 (ResNet-50: (256, 2048)).
        channels: width of the CNN decoder ("hid"). Default 64.
        in_index: (skip level, token level) of the backbone's outputs. Default (0, 3).
        embed_dims: transformer width E. Default 256.
        depth: encoder layers, and as many decoder layers. Default 4.
        num_heads: attention heads (each gives one mask per class). Default 8.
        mlp_ratio: hidden width of the encoder and decoder feed-forwards, in units of E.
            Default 3.
        token_grid: (gh, gw) of the token map at the training crop size: the position table has
            1 + gh * gw rows (class token first) and the masks' LayerNorm / feed-forward width
            gh * gw. Default (32, 32), the original's (512 px at stride 16); (16, 16) for
            PVT at 512 px.
        mask_mlp_ratio: hidden width of the masks' feed-forward, in units of gh * gw. Default 3.
        drop_path_rate: stochastic depth, rising linearly from 0 over the encoder's layers and,
            again, over the decoder's. Default 0.
        prune_unused: build only the decoder parts that reach the output: the masks' update in
            the last layer, the value path and the query / token updates in the others. False
            also builds the parts the original builds but never uses (never called, so they get
            no gradient: distributed training then needs find_unused_parameters=True); that
            gives the original's parameter count. The output is the same. Default True.
        norm_cfg: of the CNN decoder. Default BN.
        dropout_ratio: dropout before the per-class 1x1 classifier. Default 0 (none).
        **kwargs: the other :class:`BaseDecodeHead` arguments (num_classes, loss_decode,
            align_corners, ignore_index, ...). One query per output channel.

    Shapes: inputs[in_index[0]] (B, C_skip, Hs, Ws), inputs[in_index[1]] (B, C_tokens, h, w),
    any h, w -> logits (B, num_classes, Hs, Ws). The encoder and the masks run on (h, w); the
    CNN decoder on B * num_classes maps, (h, w) then (Hs, Ws).
    """

    def __init__(self, in_channels: Sequence[int] = (64, 512), channels: int = 64,
                 in_index: Sequence[int] = (0, 3), embed_dims: int = 256, depth: int = 4,
                 num_heads: int = 8, mlp_ratio: float = 3.0, token_grid: Sequence[int] = (32, 32),
                 mask_mlp_ratio: float = 3.0, drop_path_rate: float = 0.0,
                 prune_unused: bool = True, norm_cfg: Optional[dict] = dict(type='BN'),
                 dropout_ratio: float = 0.0, init_cfg: Optional[dict] = None, **kwargs) -> None:
        for name, value in (('in_channels', in_channels), ('in_index', in_index), ('token_grid',
                                                                                   token_grid)):
            if (not isinstance(value, (list, tuple)) or len(value) != 2
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
                raise ValueError(f'Trans2SegHead: {name} must be two integers (' +
                                 ('skip, tokens' if name != 'token_grid' else 'gh, gw') +
                                 f'), got {value!r}')
        if min(token_grid) < 1 or depth < 1:
            raise ValueError(f'Trans2SegHead: token_grid and depth must be positive, got '
                             f'token_grid={token_grid!r}, depth={depth!r}')
        check_head_split(embed_dims, num_heads, 'Trans2SegHead: ')
        super().__init__(
            list(in_channels), channels, in_index=list(in_index), input_transform='multiple_select',
            norm_cfg=norm_cfg, dropout_ratio=dropout_ratio, init_cfg=init_cfg, **kwargs)
        skip_channels, token_channels = in_channels
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.token_grid = tuple(token_grid)
        gh, gw = self.token_grid
        rates = [x.item() for x in torch.linspace(0, drop_path_rate, depth)]

        # encoder
        self.input_proj = nn.Linear(token_channels, embed_dims)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + gh * gw, embed_dims))
        self.encoder = nn.ModuleList(
            PVTBlock(embed_dims, num_heads, sr_ratio=1, mlp=FeedForward(
                embed_dims, int(embed_dims * mlp_ratio)), drop_path=r, qkv_bias=False)
            for r in rates)
        self.encoder_norm = nn.LayerNorm(embed_dims, eps=BLOCK_NORM_EPS)
        # decoder
        self.query_embed = nn.Parameter(torch.zeros(1, self.out_channels, embed_dims))
        last = depth - 1
        self.decoder = nn.ModuleList(
            Trans2SegDecoderLayer(embed_dims, num_heads, mlp_ratio, self.token_grid, mask_mlp_ratio,
                                  drop_path=r, updates=not prune_unused or i < last,
                                  masks=not prune_unused or i == last) for i, r in enumerate(rates))
        # CNN decoder, shared by all classes
        conv = dict(norm_cfg=norm_cfg, act_cfg=self.act_cfg)
        self.mask_conv1 = DepthwiseSeparableConvModule(embed_dims + num_heads, channels, 3,
                                                       padding=1, **conv)
        self.mask_conv2 = DepthwiseSeparableConvModule(channels, channels, 3, padding=1, **conv)
        self.skip_conv = ConvModule(skip_channels, channels, 1, conv_cfg=self.conv_cfg, **conv)
        self.mask_conv3 = DepthwiseSeparableConvModule(channels, channels, 3, padding=1, **conv)
        # BaseDecodeHead's conv_seg (channels -> classes) becomes the per-class classifier
        self.conv_seg = nn.Conv2d(channels, 1, 1)

    def init_weights(self) -> None:
        """With ``init_cfg`` (e.g. a pretrained head): that. Else linear layers Xavier-uniform with
        zero bias (the paper's init of new layers), class token, position table and queries
        truncated-normal (std 0.02), the classifier normal (std 0.01, mmseg's); the CNN's
        convolutions keep mmcv's ConvModule init."""
        if self.init_cfg is not None:
            super().init_weights()
            return
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for p in (self.cls_token, self.pos_embed, self.query_embed):
            trunc_normal_(p, std=0.02)
        normal_init(self.conv_seg, std=0.01)

    def encode(self, x: Tensor) -> Tensor:
        """Tokens map (B, C_tokens, h, w) -> encoded tokens (B, h*w, E) (class token dropped)."""
        B, _, h, w = x.shape
        tokens = self.input_proj(x.flatten(2).transpose(1, 2))
        pos = self.pos_embed
        grid_pos = resize_pos_embed(pos[:, 1:], self.token_grid, (h, w), align_corners=True)
        cls = (self.cls_token + pos[:, :1]).expand(B, -1, -1)
        tokens = torch.cat([cls, tokens + grid_pos], dim=1)
        for layer in self.encoder:  # sr_ratio 1: plain self-attention, the grid is not used
            tokens = layer(tokens, (h, w))
        return self.encoder_norm(tokens)[:, 1:]

    def decode(self, tokens: Tensor, hw: Grid) -> Tensor:
        """Encoded tokens (B, h*w, E) -> the last layer's masks (B, K, heads, h*w)."""
        queries = self.query_embed.expand(tokens.shape[0], -1, -1)
        for layer in self.decoder[:-1]:
            queries, tokens = layer(queries, tokens)
            queries = queries + self.query_embed  # the class queries again, before each layer
        return self.decoder[-1].masks(queries, tokens, hw)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Backbone outputs -> per-class logits (B, K, Hs, Ws) on the skip level's grid."""
        skip, x = self._transform_inputs(inputs)
        B, _, h, w = x.shape
        K = self.out_channels
        tokens = self.encode(x)
        masks = self.decode(tokens, (h, w)).reshape(B * K, self.num_heads, h, w)
        fmap = tokens.transpose(1, 2).reshape(B, 1, self.embed_dims, h, w)
        y = torch.cat([fmap.expand(-1, K, -1, -1, -1).reshape(B * K, -1, h, w), masks], dim=1)
        y = self.mask_conv2(self.mask_conv1(y))
        skip = self.skip_conv(skip)  # B, channels, Hs, Ws
        y = F.interpolate(y, size=skip.shape[2:], mode='bilinear', align_corners=self.align_corners)
        y = (y.unflatten(0, (B, K)) + skip[:, None]).flatten(0, 1)
        y = self.mask_conv3(y)
        if self.dropout is not None:
            y = self.dropout(y)
        return self.conv_seg(y).reshape(B, K, *skip.shape[2:])
