"""An independent, explicit transcription of PVT v1 (paper eq. (1)-(4), official semantics), as
a feature extractor and as the authors' ImageNet classifier (class token, final norm, head;
tests/data/classification_facts.md Sec. 1).

Plain functions over an *official-layout* state dict: no nn.Module, no mmpvt code, attention as
the literal softmax(q k^T / sqrt(d)) v. Sizes are floored at every patch embedding, as in the
authors' code, so use it on inputs that 32 divides (where mmpvt must agree exactly).
"""
import math

import torch
import torch.nn.functional as F


def layer_norm(x, sd, prefix, eps):
    """LayerNorm with the official tensors `prefix`.weight / .bias."""
    return F.layer_norm(x, x.shape[-1:], sd[prefix + '.weight'], sd[prefix + '.bias'], eps)


def linear(x, sd, prefix):
    """x W^T + b with the official tensors `prefix`.weight / .bias."""
    return x @ sd[prefix + '.weight'].t() + sd[prefix + '.bias']


def explicit_attention(q, k, v):
    """Eq. (4): softmax(q k^T / sqrt(d_head)) v on (B, heads, N, d) tensors."""
    attn = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    return attn.softmax(dim=-1) @ v


def resize_table(pos, hw):
    """A (1, side*side, C) position table bilinearly resized (align_corners=False) to grid hw."""
    side, C = math.isqrt(pos.shape[1]), pos.shape[2]
    if tuple(hw) == (side, side):
        return pos
    grid = pos.reshape(1, side, side, C).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=hw, mode='bilinear', align_corners=False)
    return grid.reshape(1, C, hw[0] * hw[1]).permute(0, 2, 1)


def encoder_layer(t, sd, p, heads, hw):
    """One pre-norm layer `p` (e.g. 'block4.0') on tokens t (B, N, C); the SR input is the
    (h, w) grid of t, so t may hold extra tokens only where there is no reduction (R = 1)."""
    B, _, C = t.shape
    h = layer_norm(t, sd, p + '.norm1', 1e-6)
    q = linear(h, sd, p + '.attn.q').reshape(B, -1, heads, C // heads).transpose(1, 2)
    if p + '.attn.sr.weight' in sd:  # eq. (3): SR(x) = Norm(Reshape(x, R) W^S)
        r = sd[p + '.attn.sr.weight']
        m = h.transpose(1, 2).reshape(B, C, *hw)
        m = F.conv2d(m, r, sd[p + '.attn.sr.bias'], stride=r.shape[-1])
        m = layer_norm(m.flatten(2).transpose(1, 2), sd, p + '.attn.norm', 1e-5)
    else:
        m = h
    kv = linear(m, sd, p + '.attn.kv').reshape(B, -1, 2, heads, C // heads)
    k, v = kv.permute(2, 0, 3, 1, 4)
    o = explicit_attention(q, k, v).transpose(1, 2).reshape(B, -1, C)
    t = t + linear(o, sd, p + '.attn.proj')
    h = layer_norm(t, sd, p + '.norm2', 1e-6)
    return t + linear(F.gelu(linear(h, sd, p + '.mlp.fc1')), sd, p + '.mlp.fc2')


def stage_tokens(sd, s, heads, x, cls_token=None):
    """Stage s (1..4) on a (B, C_in, H, W) map: (tokens (B, [1 +] h*w, C), (h, w)). With
    `cls_token` (1, 1, C) it is prepended as token 0 and gets row 0 of the table as is."""
    w = sd[f'patch_embed{s}.proj.weight']
    x = F.conv2d(x, w, sd[f'patch_embed{s}.proj.bias'], stride=w.shape[-1])
    hw = tuple(x.shape[2:])
    t = layer_norm(x.flatten(2).transpose(1, 2), sd, f'patch_embed{s}.norm', 1e-5)
    pos = sd[f'pos_embed{s}']
    if s == 4:  # row 0 belongs to the class token
        cls_pos, pos = pos[:, :1], pos[:, 1:]
    t = t + resize_table(pos, hw)
    if cls_token is not None:
        t = torch.cat([cls_token.expand(t.shape[0], -1, -1) + cls_pos, t], dim=1)
    j = 0
    while f'block{s}.{j}.norm1.weight' in sd:
        t = encoder_layer(t, sd, f'block{s}.{j}', heads, hw)
        j += 1
    return t, hw


def reference_forward(sd, num_heads, x):
    """Official PVT features F1..F4 (list of (B, C, H, W)) for an image batch x (B, 3, H, W)."""
    outs = []
    for s in range(1, 5):
        t, hw = stage_tokens(sd, s, num_heads[s - 1], x)
        x = t.transpose(1, 2).reshape(t.shape[0], -1, *hw)
        outs.append(x)
    return outs


def reference_classify(sd, num_heads, x):
    """The official ImageNet classifier: logits (B, classes) for images x (B, 3, H, W).

    Stages 1-3 as for features; stage 4 runs on the class token (token 0) and the h*w patch
    tokens; a final LayerNorm (eps 1e-6), token 0, the linear ``head``."""
    for s in range(1, 4):
        t, hw = stage_tokens(sd, s, num_heads[s - 1], x)
        x = t.transpose(1, 2).reshape(t.shape[0], -1, *hw)
    t, _ = stage_tokens(sd, 4, num_heads[3], x, cls_token=sd['cls_token'])
    return linear(layer_norm(t, sd, 'norm', 1e-6)[:, 0], sd, 'head')
