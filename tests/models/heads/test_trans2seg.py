"""Specification of the Trans2Seg decode head (mmpvt.models.heads.trans2seg): output shapes at any
input size, the attention that makes the masks against its formula, pruning that keeps the
output, training and prediction inside mmseg's EncoderDecoder with PVT-S and ResNet-50-d16, and
the sizes of configs/trans2seg/*.py against counts by hand from the layer sizes."""
import copy
import math
import os

import pytest
import torch
from mmengine.config import Config

from mmpvt.models.heads import ClassQueryAttention, Trans2SegHead
from mmpvt.models.heads.trans2seg import resample_grid
from ...helpers import (REPO, build_model, parameter_count, release_backbone_shapes,
                        segmentation_inputs)

PVT_S = os.path.join(REPO, 'configs', 'trans2seg', 'pvt_s_40k.py')
R50 = os.path.join(REPO, 'configs', 'trans2seg', 'r50_d16_40k.py')
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
    encoder = (
        linear(c_tokens, E) + E + (1 + G) * E  # projection, class token, position table
        + depth * (norm(E) + 3 * E * E + linear(E, E) + norm(E) + ffn(E, hidden)) + norm(E))
    queries = num_classes * E
    attn_logits = norm(E) + norm(E) + E * E + E * E  # norms of queries and tokens, q, k
    updates = E * E + linear(E, E) + norm(E) + ffn(E, hidden) + norm(E) + ffn(E, hidden)  # v, proj
    masks = norm(G) + ffn(G, 3 * G)
    if pruned:  # updates in all layers but the last, masks in the last only
        decoder = depth * attn_logits + (depth - 1) * updates + masks
    else:
        decoder = depth * (attn_logits + updates + masks)
    cnn = (
        sep_conv(E + heads, hid) + sep_conv(hid, hid) + c_skip * hid + norm(hid) +
        sep_conv(hid, hid) + linear(hid, 1))
    return encoder + queries + decoder + cnn


def resnet50_v1c_params():
    """ResNet-50 with the deep stem (three 3x3 convs 3-32-32-64), bottlenecks 3/4/6/3, no fc."""
    total = 3 * 32 * 9 + norm(32) + 32 * 32 * 9 + norm(32) + 32 * 64 * 9 + norm(64)
    inplanes = 64
    for planes, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3)):
        for b in range(blocks):
            total += (
                inplanes * planes + norm(planes) + 9 * planes * planes + norm(planes) +
                planes * 4 * planes + norm(4 * planes))
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
    return Trans2SegHead(
        in_channels=(c_skip, c_tokens), num_classes=num_classes, token_grid=grid, **kwargs)


def features(backbone, batch, hw):
    """Backbone outputs with the shapes of `backbone` (levels 1 and 2 unused by the head)."""
    c_skip, s_skip, c_tokens, s_tokens, _ = BACKBONES[backbone]
    H, W = hw
    return (torch.randn(batch, c_skip, math.ceil(H / s_skip),
                        math.ceil(W / s_skip)), torch.zeros(batch, 1, 1,
                                                            1), torch.zeros(batch, 1, 1, 1),
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
    last = [('decoder', '3', m)
            for m in ('attn', 'norm_query_ffn', 'query_ffn', 'norm_tokens_ffn', 'tokens_ffn')]
    masks = [('decoder', i, m) for i in '012' for m in ('norm_masks', 'masks_ffn')]
    assert unused == set(last + masks)
    assert [
        n for n, p in head.named_parameters() if p.grad is None and n.startswith('decoder.3.attn')
    ] == ['decoder.3.attn.proj.weight', 'decoder.3.attn.proj.bias']


def test_bad_arguments_are_refused_naming_them():
    with pytest.raises(ValueError, match='in_channels must be two integers'):
        Trans2SegHead(in_channels=(512, ), num_classes=3)
    with pytest.raises(ValueError, match='token_grid must be two integers'):
        Trans2SegHead(token_grid=16, num_classes=3)
    with pytest.raises(ValueError, match=r'embed_dims \(100\) must be divisible by num_heads'):
        Trans2SegHead(embed_dims=100, num_classes=3)


# ---- in mmseg's EncoderDecoder -----------------------------------------------------------------
def segmentor(path, **head):
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.update(head)
    model = build_model(cfg)
    model.init_weights()
    return model


@pytest.mark.slow  # whole segmentors (7-9 s each on 2 busy cores)
@pytest.mark.parametrize('path', [PVT_S, R50], ids=['PVT-S', 'R50-d16'])
def test_segmentor_trains_every_parameter_and_predicts(path):
    model = segmentor(path, num_classes=5)
    packed = segmentation_inputs(hw=(64, 96), num_classes=5)
    model.train()
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert [r.pred_sem_seg.data.shape for r in results] == [(1, 64, 96)] * 2
    assert all(int(r.pred_sem_seg.data.max()) < 5 for r in results)


# ---- the configs' sizes, as docs/trans2seg.md gives them ---------------------------------------
@pytest.mark.slow  # whole segmentors
@pytest.mark.parametrize('path,backbone_params,head,millions,original_millions', [
    (PVT_S, pvt_s_backbone_params, (64, 512, (16, 16)), 30.56, 32.66),
    (R50, resnet50_v1c_params, (256, 2048, (32, 32)), 36.62, 56.43),
], ids=['PVT-S', 'R50-d16'])
def test_config_sizes_are_backbone_plus_head_by_hand(path, backbone_params, head, millions,
                                                     original_millions):
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg)
    assert parameter_count(model.backbone) == backbone_params()
    assert parameter_count(model.decode_head) == trans2seg_params(150, *head)
    assert round(parameter_count(model) / 1e6, 2) == millions
    full = copy.deepcopy(cfg)
    full.model.decode_head.prune_unused = False
    head_params = parameter_count(build_model(full).decode_head)
    assert head_params == trans2seg_params(150, *head, pruned=False)
    assert round((backbone_params() + head_params) / 1e6, 2) == original_millions


def test_r50_config_is_the_pvt_config_with_another_backbone():
    pvt, r50 = Config.fromfile(PVT_S).to_dict(), Config.fromfile(R50).to_dict()
    assert r50['model']['backbone']['type'] == 'ResNetV1c'
    assert r50['model']['backbone']['strides'] == (1, 2, 2, 1)  # output stride 16
    assert r50['model']['backbone']['dilations'] == (1, 1, 1, 2)
    for cfg in (pvt, r50):
        del cfg['model']['backbone']
        del cfg['model']['decode_head']['in_channels'], cfg['model']['decode_head']['token_grid']
    assert pvt == r50
