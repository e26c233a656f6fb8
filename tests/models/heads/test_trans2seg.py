"""Specification of the Trans2Seg decode head (mmpvt.models.heads.trans2seg): output shapes at any
input size, the attention that makes the masks against its formula, and pruning that keeps the
output."""
import math

import pytest
import torch

from mmpvt.models.heads import ClassQueryAttention, Trans2SegHead
from mmpvt.models.heads.trans2seg import resample_grid

from ...helpers import parameter_count, release_backbone_shapes

# (skip channels, skip stride, token channels, token stride, token grid at 512 px)
BACKBONES = {'PVT-S': (64, 4, 512, 32, (16, 16)), 'R50-d16': (256, 4, 2048, 16, (32, 32))}


# ---- counts by hand, from the layer sizes of the original's medium setting ----------------------
def linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def norm(c):  # LayerNorm or BatchNorm: a weight and a bias per channel
    return 2 * c


def ffn(c, hidden):
    return linear(c, hidden) + linear(hidden, c)


def sep_conv(i, o):  # depth-wise 3x3 (no bias), BN, point-wise 1x1 (no bias), BN
    return 9 * i + norm(i) + i * o + norm(o)


def trans2seg_params(num_classes, c_skip, c_tokens, grid, pruned=True, E=256, depth=4, heads=8,
                     mlp_ratio=3, hid=64):
    G = grid[0] * grid[1]
    hidden = E * mlp_ratio
    encoder = (linear(c_tokens, E) + E + (1 + G) * E  # projection, class token, position table
               + depth * (norm(E) + 3 * E * E + linear(E, E) + norm(E) + ffn(E, hidden))
               + norm(E))
    queries = num_classes * E
    attn_logits = norm(E) + norm(E) + E * E + E * E  # norms of queries and tokens, q, k
    updates = E * E + linear(E, E) + norm(E) + ffn(E, hidden) + norm(E) + ffn(E, hidden)  # v, proj
    masks = norm(G) + ffn(G, 3 * G)
    if pruned:  # updates in all layers but the last, masks in the last only
        decoder = depth * attn_logits + (depth - 1) * updates + masks
    else:
        decoder = depth * (attn_logits + updates + masks)
    cnn = (sep_conv(E + heads, hid) + sep_conv(hid, hid) + c_skip * hid + norm(hid)
           + sep_conv(hid, hid) + linear(hid, 1))
    return encoder + queries + decoder + cnn


def resnet50_v1c_params():
    """ResNet-50 with the deep stem (three 3x3 convs 3-32-32-64), bottlenecks 3/4/6/3, no fc."""
    total = 3 * 32 * 9 + norm(32) + 32 * 32 * 9 + norm(32) + 32 * 64 * 9 + norm(64)
    inplanes = 64
    for planes, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        for b in range(blocks):
            total += (inplanes * planes + norm(planes) + 9 * planes * planes + norm(planes)
                      + planes * 4 * planes + norm(4 * planes))
            if b == 0:  # projection shortcut
                total += inplanes * 4 * planes + norm(4 * planes)
            inplanes = 4 * planes
    return total


def pvt_s_backbone_params():
    """The official PVT-S checkpoint without its classifier entries and the class-token row of the
    stage-4 position table (512 values)."""
    return sum(math.prod(s) for s in release_backbone_shapes('small').values()) - 512


def head_for(backbone, num_classes, **kwargs):
    c_skip, _, c_tokens, _, grid = BACKBONES[backbone]
    return Trans2SegHead(in_channels=(c_skip, c_tokens), num_classes=num_classes,
                         token_grid=grid, **kwargs)


def features(backbone, batch, hw):
    """Backbone outputs with the shapes of `backbone` (levels 1 and 2 unused by the head)."""
    c_skip, s_skip, c_tokens, s_tokens, _ = BACKBONES[backbone]
    H, W = hw
    return (torch.randn(batch, c_skip, math.ceil(H / s_skip), math.ceil(W / s_skip)),
            torch.zeros(batch, 1, 1, 1), torch.zeros(batch, 1, 1, 1),
            torch.randn(batch, c_tokens, math.ceil(H / s_tokens), math.ceil(W / s_tokens)))


# ---- shapes ------------------------------------------------------------------------------------
@pytest.mark.parametrize('backbone', list(BACKBONES))
@pytest.mark.parametrize('hw,num_classes', [((256, 320), 3), ((192, 288), 7)])
def test_output_is_one_logit_map_per_class_on_the_skip_grid(backbone, hw, num_classes):
    head = head_for(backbone, num_classes).eval()
    with torch.no_grad():
        out = head(features(backbone, 2, hw))
    assert out.shape == (2, num_classes, hw[0] // 4, hw[1] // 4)
    assert torch.isfinite(out).all()


def test_grids_are_resampled_both_ways_and_left_alone_when_equal():
    x = torch.randn(2, 5, 3, 4 * 6)
    assert resample_grid(x, (4, 6), (4, 6)) is x
    up = resample_grid(torch.full((2, 3, 2 * 3), 1.5), (2, 3), (5, 7))
    assert up.shape == (2, 3, 35) and torch.allclose(up, torch.full_like(up, 1.5))


# ---- the masks are the attention's logits -------------------------------------------------------
def test_masks_are_per_head_pre_softmax_logits_and_forward_attends_with_them():
    E, heads, K, N = 16, 4, 5, 7
    attn = ClassQueryAttention(E, heads)
    queries, tokens = torch.randn(2, K, E), torch.randn(2, N, E)
    d = E // heads
    q = (queries @ attn.q.weight.T).view(2, K, heads, d)
    k = (tokens @ attn.kv.weight[:E].T).view(2, N, heads, d)
    v = (tokens @ attn.kv.weight[E:].T).view(2, N, heads, d)
    logits = torch.einsum('bkhd,bnhd->bkhn', q, k) / math.sqrt(d)
    attended = torch.einsum('bkhn,bnhd->bkhd', logits.softmax(-1), v).reshape(2, K, E)
    expected = attended @ attn.proj.weight.T + attn.proj.bias
    assert torch.allclose(attn.logits(queries, tokens), logits, atol=1e-5)
    assert torch.allclose(attn(queries, tokens), expected, atol=1e-5)


# ---- pruning -----------------------------------------------------------------------------------
def test_pruned_head_computes_the_same_output_as_the_full_one():
    full = head_for('PVT-S', 4, prune_unused=False).eval()
    full.init_weights()
    pruned = head_for('PVT-S', 4).eval()
    state = full.state_dict()
    last = f'decoder.{len(full.decoder) - 1}.attn.kv.weight'
    state[last] = state[last][:full.embed_dims]  # the last layer keeps only the keys
    missing, unexpected = pruned.load_state_dict(state, strict=False)
    assert missing == []
    assert len(unexpected) > 0 and all(k.startswith('decoder.') for k in unexpected)
    x = features('PVT-S', 1, (128, 192))
    with torch.no_grad():
        assert torch.allclose(pruned(x), full(x), atol=1e-5)


def test_unpruned_head_has_the_originals_unused_parameters_without_gradient():
    head = head_for('PVT-S', 3, prune_unused=False)
    head.init_weights()
    head(features('PVT-S', 2, (64, 96))).sum().backward()
    unused = {tuple(n.split('.')[:3]) for n, p in head.named_parameters() if p.grad is None}
    last = [('decoder', '3', m) for m in ('attn', 'norm_query_ffn', 'query_ffn',
                                          'norm_tokens_ffn', 'tokens_ffn')]
    masks = [('decoder', i, m) for i in '012' for m in ('norm_masks', 'masks_ffn')]
    assert unused == set(last + masks)
    assert [n for n, p in head.named_parameters() if p.grad is None
            and n.startswith('decoder.3.attn')] == ['decoder.3.attn.proj.weight',
                                                    'decoder.3.attn.proj.bias']


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match='in_channels must be two integers'):
        Trans2SegHead(in_channels=(512, ), num_classes=3)
    with pytest.raises(ValueError, match='token_grid must be two integers'):
        Trans2SegHead(token_grid=16, num_classes=3)
    with pytest.raises(ValueError, match=r'embed_dims \(100\) must be divisible by num_heads'):
        Trans2SegHead(embed_dims=100, num_classes=3)
