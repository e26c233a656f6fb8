"""An independent, explicit transcription of PVT v1 (paper eq. (1)-(4), official semantics).

Plain functions over an *official-layout* state dict: no nn.Module, no mmpvt code, attention as
the literal softmax(q k^T / sqrt(d)) v. Sizes are floored at every patch embedding, as in the
authors' code, so use it on inputs that 32 divides (where mmpvt must agree exactly).
"""
import math

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


def reference_forward(sd, num_heads, x):
    """Official PVT features F1..F4 (list of (B, C, H, W)) for an image batch x (B, 3, H, W)."""
    outs = []
    B = x.shape[0]
    for s in range(1, 5):
        w = sd[f'patch_embed{s}.proj.weight']
        x = F.conv2d(x, w, sd[f'patch_embed{s}.proj.bias'], stride=w.shape[-1])
        C, H, W = x.shape[1:]
        t = layer_norm(x.flatten(2).transpose(1, 2), sd, f'patch_embed{s}.norm', 1e-5)
        pos = sd[f'pos_embed{s}']
        if s == 4:
            pos = pos[:, 1:]  # row 0 belongs to the class token
        side = math.isqrt(pos.shape[1])
        if (H, W) != (side, side):
            grid = pos.reshape(1, side, side, C).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(H, W), mode='bilinear', align_corners=False)
            pos = grid.reshape(1, C, H * W).permute(0, 2, 1)
        t = t + pos
        heads = num_heads[s - 1]
        j = 0
        while f'block{s}.{j}.norm1.weight' in sd:
            p = f'block{s}.{j}'
            h = layer_norm(t, sd, p + '.norm1', 1e-6)
            q = linear(h, sd, p + '.attn.q').reshape(B, -1, heads, C // heads).transpose(1, 2)
            if p + '.attn.sr.weight' in sd:  # eq. (3): SR(x) = Norm(Reshape(x, R) W^S)
                r = sd[p + '.attn.sr.weight']
                m = h.transpose(1, 2).reshape(B, C, H, W)
                m = F.conv2d(m, r, sd[p + '.attn.sr.bias'], stride=r.shape[-1])
                m = layer_norm(m.flatten(2).transpose(1, 2), sd, p + '.attn.norm', 1e-5)
            else:
                m = h
            kv = linear(m, sd, p + '.attn.kv').reshape(B, -1, 2, heads, C // heads)
            k, v = kv.permute(2, 0, 3, 1, 4)
            o = explicit_attention(q, k, v).transpose(1, 2).reshape(B, -1, C)
            t = t + linear(o, sd, p + '.attn.proj')
            h = layer_norm(t, sd, p + '.norm2', 1e-6)
            t = t + linear(F.gelu(linear(h, sd, p + '.mlp.fc1')), sd, p + '.mlp.fc2')
            j += 1
        x = t.transpose(1, 2).reshape(B, C, H, W)
        outs.append(x)
    return outs
