"""An independent, explicit transcription of PVTv2 as the official code computes it, as a
feature extractor and as the authors' ImageNet classifier.

Written from tests/data/pvt_v2_facts.md (Sec. 1; the classifier from classification.md
Sec. 1), over an *official-layout* state dict: plain functions, no nn.Module, no mmpvt code,
attention as the literal softmax(q k^T / sqrt(d)) v, every LayerNorm with the official eps (1e-5
in patch embedding and attn.norm, 1e-6 elsewhere). The K/V reduction is the official unpadded
R x R conv, so grids that R does not divide are floored, as in the authors' code: compare with
mmpvt on sizes that 32 divides (b0-b5), or on any size (b2-li).
"""
import torch.nn.functional as F

# The elementary operations are those of v1 (LayerNorm, linear layers, eq. (4) attention).
from .reference_pvt import explicit_attention, layer_norm, linear

PATCH = {1: (7, 4), 2: (3, 2), 3: (3, 2), 4: (3, 2)}  # stage -> (kernel, stride), padding k // 2


def depthwise_conv3x3(x, weight, bias):
    """The official depth-wise 3x3 convolution (stride 1, zero padding 1; weight (C, 1, 3, 3)),
    written as the sum of the nine shifted copies of x, each weighted per channel (a
    cross-correlation, as PyTorch's conv2d). On the CPU the literal sum is also ~6x faster than a
    grouped float64 convolution of the token grid, which runs channel by channel."""
    H, W = x.shape[-2:]
    padded = F.pad(x.contiguous(), (1, 1, 1, 1))  # NCHW, whatever the strides of the grid
    out = bias.view(1, -1, 1, 1).expand_as(x).clone()
    for i in range(3):
        for j in range(3):
            out.addcmul_(padded[:, :, i:i + H, j:j + W], weight[:, 0, i, j].view(1, -1, 1, 1))
    return out


def reference_forward_v2(sd, num_heads, linear_sra, x):
    """Official PVTv2 features (list of 4 (B, C, H, W)) for images x (B, 3, H, W)."""
    outs = []
    B = x.shape[0]
    for s in range(1, 5):
        k, stride = PATCH[s]
        x = F.conv2d(x, sd[f'patch_embed{s}.proj.weight'], sd[f'patch_embed{s}.proj.bias'],
                     stride=stride, padding=k // 2)
        C, H, W = x.shape[1:]
        t = layer_norm(x.flatten(2).transpose(1, 2), sd, f'patch_embed{s}.norm', 1e-5)
        heads = num_heads[s - 1]
        d = C // heads
        j = 0
        while f'block{s}.{j}.norm1.weight' in sd:
            p = f'block{s}.{j}'
            h = layer_norm(t, sd, p + '.norm1', 1e-6)
            q = linear(h, sd, p + '.attn.q').reshape(B, -1, heads, d).transpose(1, 2)
            grid = h.transpose(1, 2).reshape(B, C, H, W)
            if linear_sra:
                m = F.adaptive_avg_pool2d(grid, 7)
                m = F.conv2d(m, sd[p + '.attn.sr.weight'], sd[p + '.attn.sr.bias'])
                m = F.gelu(layer_norm(m.flatten(2).transpose(1, 2), sd, p + '.attn.norm', 1e-5))
            elif p + '.attn.sr.weight' in sd:
                r = sd[p + '.attn.sr.weight'].shape[-1]
                m = F.conv2d(grid, sd[p + '.attn.sr.weight'], sd[p + '.attn.sr.bias'], stride=r)
                m = layer_norm(m.flatten(2).transpose(1, 2), sd, p + '.attn.norm', 1e-5)
            else:
                m = h
            kv = linear(m, sd, p + '.attn.kv').reshape(B, -1, 2, heads, d).permute(2, 0, 3, 1, 4)
            o = explicit_attention(q, kv[0], kv[1]).transpose(1, 2).reshape(B, -1, C)
            t = t + linear(o, sd, p + '.attn.proj')
            h = linear(layer_norm(t, sd, p + '.norm2', 1e-6), sd, p + '.mlp.fc1')
            if linear_sra:
                h = F.relu(h)
            hidden = h.shape[-1]
            h = depthwise_conv3x3(
                h.transpose(1, 2).reshape(B, hidden, H, W), sd[p + '.mlp.dwconv.dwconv.weight'],
                sd[p + '.mlp.dwconv.dwconv.bias'])
            h = F.gelu(h.flatten(2).transpose(1, 2))
            t = t + linear(h, sd, p + '.mlp.fc2')
            j += 1
        t = layer_norm(t, sd, f'norm{s}', 1e-6)
        x = t.transpose(1, 2).reshape(B, C, H, W)
        outs.append(x)
    return outs


def reference_classify_v2(sd, num_heads, linear_sra, x):
    """The official ImageNet classifier: logits (B, classes) for images x (B, 3, H, W): the
    stage-4 tokens after norm4, their mean over tokens, the linear ``head``."""
    last = reference_forward_v2(sd, num_heads, linear_sra, x)[-1]
    tokens = last.flatten(2).transpose(1, 2)  # (B, h*w, C), as the stage computed them
    return linear(tokens.mean(dim=1), sd, 'head')
