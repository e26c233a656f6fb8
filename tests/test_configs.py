"""Every shipped config builds; model sizes reproduce the paper; each family trains one step."""
import copy
import functools
import glob
import math
import os
import re

import pytest
import torch

import mmpvt  # noqa: F401
from mmpvt.models import PVT, PVTv2
from mmpvt.models.builder import registry_of
from .helpers import (REPO, build_model, official_backbone_params, parameter_count,
                      repository_config, segmentation_inputs)
from .test_head_configs import HEADS

pytestmark = pytest.mark.slow  # whole models, training or subprocesses: not in test-fast

# Detection, segmentation and demo configs. The ImageNet classifiers' recipes
# (configs/imagenet) have their own specification: tests/test_imagenet_configs.py.
CONFIGS = sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'configs', '*', '*.py'))
    if '/_base_/' not in p and '/imagenet/' not in p)  # _base_: fragments
URL = 'https://github.com/whai362/PVT/releases/download/v2/pvt_{}.pth'
V2_URL = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_{}.pth'
V2 = ('b0', 'b1', 'b2', 'b2_li', 'b3', 'b4', 'b5')

# Parameter counts of Tables 3-5, in millions (T, S, M, L).
PAPER_PARAMS = {
    'retinanet/pvt_{}_1x.py': (23.0, 34.2, 53.9, 71.1),
    'retinanet/pvt_{}_3x_ms.py': (23.0, 34.2, 53.9, 71.1),
    'mask_rcnn/pvt_{}_1x.py': (32.9, 44.1, 63.9, 81.0),
    'mask_rcnn/pvt_{}_3x_ms.py': (32.9, 44.1, 63.9, 81.0),
    'sem_fpn/pvt_{}_80k.py': (17.0, 28.2, 48.0, 65.1),
    'sem_fpn/pvt_{}_40k.py': (17.0, 28.2, 48.0, 65.1),
}
PAPER_TABLE = [(pattern.format(v), params[i]) for pattern, params in PAPER_PARAMS.items()
               for i, v in enumerate('tsml')]
PAPER_TABLE += [('retinanet/pvt_s_1x_640.py', 34.2), ('sem_fpn/pvt_l_320k_msflip.py', 65.1)]

load = repository_config

# Trans2Seg's head reads tensor values while it is built (its drop-path rates): not on meta.
BUILT_ON_CPU = {'configs/trans2seg/pvt_s_40k.py', 'configs/trans2seg/r50_d16_40k.py'}


@functools.lru_cache(maxsize=None)
def build(path):
    """The model of `path`, for its structure and sizes: on the meta device (no memory, no
    random initialisation; 6x faster to build), so every config is built once per session.
    Shared: do not modify it; a test that runs a model builds its own."""
    if path in BUILT_ON_CPU:
        return build_model(load(path))
    with torch.device('meta'):
        return build_model(load(path))


def test_all_families_are_shipped():
    expected = {
        f'{fam}/pvt_{v}_{s}.py'
        for fam in ('retinanet', 'mask_rcnn')
        for v in 'tsml'
        for s in ('1x', '3x_ms')
    }
    expected |= {f'sem_fpn/pvt_{v}_{s}.py' for v in 'tsml' for s in ('80k', '40k')}
    expected |= {'sem_fpn/pvt_l_320k_msflip.py', 'detr/pvt_s_50e.py', 'retinanet/pvt_s_1x_640.py'}
    assert expected <= {p[len('configs/'):] for p in CONFIGS}


def test_all_pvt_v2_recipes_are_shipped():
    expected = {f'{fam}/pvt_v2_{v}_1x.py' for fam in ('retinanet', 'mask_rcnn') for v in V2}
    expected |= {
        f'{fam}/pvt_v2_{v}_3x_ms.py'
        for v in ('b2', 'b2_li')
        for fam in ('mask_rcnn', 'cascade_mask_rcnn', 'atss', 'gfl', 'sparse_rcnn')
    }
    expected |= {f'sem_fpn/pvt_v2_{v}_40k.py' for v in V2} | {'demo/retinanet_pvt_v2_b0.py'}
    assert expected <= {p[len('configs/'):] for p in CONFIGS}


# The configs of PVT models (the rest are the paper's baselines: ResNet+GC, ViT); *_scratch.py
# train from the authors' random init (Fig. 5), *_wide_1x.py from our ImageNet config's checkpoint
# (Table 9: no released weights; its own test below), every other paper config from the authors'
# ImageNet weights.
PVT_CONFIGS = [p for p in CONFIGS if '/pvt_' in p or p.startswith('configs/demo/')]


@pytest.mark.parametrize('path', PVT_CONFIGS)
def test_config_builds_a_model_with_mmpvt_backbone(path):
    cfg = load(path)
    if path not in HEADS:  # those: mmpvt after what the stock config imports (their own test)
        assert cfg.custom_imports == dict(imports=['mmpvt'], allow_failed_imports=False)
    v2 = 'pvt_v2_' in os.path.basename(path)  # the file name says the family
    assert cfg.model.backbone.type == ('mmpvt.PVTv2' if v2 else 'mmpvt.PVT')
    model = build(path)
    assert isinstance(model.backbone, PVTv2 if v2 else PVT)
    if path.endswith('_scratch.py'):
        assert cfg.model.backbone.init_cfg is None
    elif not path.startswith('configs/demo/') and not path.endswith('_wide_1x.py'):
        arch = cfg.model.backbone.arch
        url = (V2_URL if v2 else URL).format(arch)
        assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=url)


def test_gc_r4_baseline_has_the_size_of_table10():
    # Table 10: ResNet50+GC r4 Mask R-CNN, 54.2M. Facts: 44.17M of Mask R-CNN R50 + 10.00M of GC
    # blocks (ratio 1/4, stages c3-c5). The authors' counter counts trainable parameters: the
    # frozen stem and first stage of the ResNet (frozen_stages=1) are not in those 54.2M.
    cfg = load('configs/mask_rcnn/r50_gc_r4_1x.py')
    assert cfg.custom_imports == dict(imports=['mmpvt'], allow_failed_imports=False)
    model = build('configs/mask_rcnn/r50_gc_r4_1x.py')
    gc = sum(p.numel() for m in model.modules() if type(m).__name__ == 'ContextBlock'
             for p in m.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert abs(gc / 1e6 - 10.00) < 0.005
    assert abs(trainable / 1e6 - 54.18) < 0.01 and round(trainable / 1e6, 1) == 54.2


@pytest.mark.parametrize('path,paper_millions', PAPER_TABLE)
def test_parameter_count_matches_paper(path, paper_millions):
    params = sum(p.numel() for p in build('configs/' + path).parameters())
    assert abs(params / 1e6 - paper_millions) < 0.1


def test_detr_size_is_official_pvt_s_plus_stock_detr(official_keys):
    # Table 6 gives no size: the official PVT-S without its classifier entries (cls_token, norm,
    # head, the class-token row of pos_embed4) plus mmdet's stock DETR minus its ResNet, with the
    # input projection reading 512 channels.
    backbone = sum(
        math.prod(shape) for name, shape in official_keys['small']
        if not re.match(r'^(cls_token|norm\.|head\.)', name)) - 512
    from mmengine.hub import get_config
    stock = get_config('mmdet::detr/detr_r50_8xb2-150e_coco.py')
    stock.model.neck.in_channels = [512]
    with torch.device('meta'):  # sizes only
        detr = registry_of(stock).build(stock.model)
    rest = sum(p.numel() for n, p in detr.named_parameters() if not n.startswith('backbone.'))
    assert sum(p.numel() for p in build('configs/detr/pvt_s_50e.py').parameters()) == \
        backbone + rest


# ---- Table 9: the wider PVT-Small --------------------------------------------------------------
def test_wider_pvt_small_retinanet_is_the_wide_classifiers_backbone_with_its_fpn():
    """The backbone of configs/imagenet/pvt_s_wide_300e.py (46,383,464 parameters with its head,
    docs/classification.md) less the head (704 x 1000 + 1000), the class token, the final norm
    (2 x 704) and the class token's row of pos_embed4 (704); then FPN and head, hand-counted:
    laterals (192 + 448 + 704) x 256 + 3 x 256, 3 output convs 3 x (9 x 256^2 + 256), the extra
    levels 9 x 704 x 256 + 256 and 9 x 256^2 + 256 (4,327,424); RetinaHead 8 x (9 x 256^2 + 256)
    + 9 x 256 x 720 + 720 + 9 x 256 x 36 + 36 (6,463,220)."""
    model = build('configs/retinanet/pvt_s_wide_1x.py')
    assert model.backbone.arch_name == 'small_wide'
    backbone = 46_383_464 - (704 * 1000 + 1000) - 704 - 2 * 704 - 704
    assert parameter_count(model.backbone) == backbone
    assert parameter_count(model) == backbone + 4_327_424 + 6_463_220
    init = model.backbone.init_cfg
    assert init['type'] == 'Pretrained' and init['prefix'] == 'backbone.'
    assert init['checkpoint'].startswith('work_dirs/pvt_s_wide_300e/')


# ---- Table 8: ViT-Small + RetinaNet (needs mmpretrain) -------------------------------------------
def needs_mmpretrain():
    try:
        import mmpretrain  # noqa: F401
    except ImportError:
        pytest.fail('the ViT-Small configs build mmpretrain.VisionTransformer: run the tests with '
                    'mmpretrain 1.2.0 installed (the torch 2.14 environment)')


@pytest.mark.parametrize('path,patch,paper_millions,facts_millions',
                         [('configs/retinanet/vit_s32_1x.py', 32, 60.8, 60.83),
                          ('configs/retinanet/vit_s4_1x.py', 4, 60.9, 60.87)])
def test_vit_small_retinanet_has_the_size_of_table8(path, patch, paper_millions, facts_millions):
    # ViT-Small: 768 wide, 8 layers, 8 heads, MLP 2304, no qkv bias; 224 px position table
    # (7^2 + 1 rows at patch 32, 56^2 + 1 at patch 4), then the stock FPN (start level 1) and head.
    needs_mmpretrain()
    model = build(path)
    vit = model.backbone.vit
    assert type(vit).__name__ == 'VisionTransformer' and len(vit.layers) == 8
    assert vit.embed_dims == 768 and vit.patch_embed.projection.kernel_size == (patch, patch)
    attn = vit.layers[0].attn
    assert attn.num_heads == 8 and attn.qkv.bias is None
    assert vit.layers[0].ffn.layers[0][0].out_features == 2304
    assert vit.pos_embed.shape == (1, (224 // patch)**2 + 1, 768)
    assert parameter_count(model.backbone) == parameter_count(vit)  # the resizing is free
    params = parameter_count(model) / 1e6
    assert round(params, 1) == paper_millions and abs(params - facts_millions) < 0.01


def test_vit_small_pyramid_takes_layers_2_4_6_8_at_strides_4_to_32():
    # footnote 3: the features of layers 2, 4, 6 and 8, interpolated to the FPN's scales
    needs_mmpretrain()
    import torch.nn.functional as F
    model = build_model(load('configs/retinanet/vit_s32_1x.py')).eval()
    vit = model.backbone.vit
    tokens = {}
    for name, module in (('2', vit.layers[1]), ('4', vit.layers[3]), ('6', vit.layers[5]),
                         ('8', vit.ln1)):  # layer 8 is read after the final norm
        module.register_forward_hook(lambda m, i, out, name=name: tokens.update({name: out}))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        maps = model.backbone(x)
    assert [tuple(m.shape) for m in maps] == [(1, 768, 64 // s, 96 // s) for s in (4, 8, 16, 32)]
    for layer, stride, got in zip('2468', (4, 8, 16, 32), maps):
        grid = tokens[layer][:, 1:].transpose(1, 2).reshape(1, 768, 2, 3)  # class token dropped
        expected = F.interpolate(grid, size=(64 // stride, 96 // stride), mode='bilinear',
                                 align_corners=False) if stride != 32 else grid
        assert torch.allclose(got, expected, atol=1e-6), layer


def test_vit_small_retinanet_trains_one_step_and_predicts():
    needs_mmpretrain()
    check_train_step_and_predict(copy.deepcopy(load('configs/retinanet/vit_s32_1x.py')), 'det')


# ---- the authors' settings, config by config (PVT v1) --------------------------------------------
# The specification: the authors' released configs (mmdet 2.13 / mmseg 0.13) where they exist
# (tests/data/pvt_v1_config_facts.md), else the paper's Sec. 5 text (tests/data/pvt_v1_facts.md,
# "Training settings"); each row says which. A config change that breaks a row fails.
DET_TEST = ('Resize', (1333, 800))
ADE_TRAIN = ('RandomResize', (2048, 512), (0.5, 2.0))
ADE_TEST = ('mmpvt.AlignResize', (2048, 512))


def det_row(lr, batch=2, base=16, epochs=12, steps=(8, 11), train=('Resize', (1333, 800)),
            test=DET_TEST, drop_path=0.1, amp=False):
    return dict(optimizer='AdamW', lr=lr, weight_decay=1e-4, batch=batch, base_batch=base, amp=amp,
                clip_grad=None, backbone_lr_mult=1.0, drop_path=drop_path, pad=32, epochs=epochs,
                steps=list(steps), warmup_iters=500, train_resize=train, crop=None,
                test_resize=test)


def seg_row(lr, base, iters, drop_path=0.1):
    return dict(optimizer='AdamW', lr=lr, weight_decay=1e-4, batch=4, base_batch=base, amp=False,
                clip_grad=None, backbone_lr_mult=1.0, drop_path=drop_path, pad=None, iters=iters,
                poly_power=0.9, train_resize=ADE_TRAIN, crop=(512, 512), test_resize=ADE_TEST)


MS_TRAIN = ('RandomResize', ((1333, 640), (1333, 800)))
V1_SETTINGS = {}
for _i, _v in enumerate('tsml'):
    _dp = 0.1 if _v in 'ts' else 0.0  # the authors' detection pvt_medium/large: no drop path
    # RetinaNet 1x: retinanet_pvt_{v}_fpn_1x_coco.py (8 GPUs x 2, AdamW 1e-4, wd 1e-4); L's
    # trains in mixed precision (apex: EpochBasedRunnerAmp, DistOptimizerHook use_fp16=True)
    V1_SETTINGS[f'retinanet/pvt_{_v}_1x.py'] = det_row(1e-4, drop_path=_dp, amp=_v == 'l')
    # 3x + multi-scale: the paper's text (no released v1 config)
    V1_SETTINGS[f'retinanet/pvt_{_v}_3x_ms.py'] = det_row(1e-4, epochs=36, steps=(27, 33),
                                                          train=MS_TRAIN, drop_path=_dp)
    # Mask R-CNN 1x: mask_rcnn_pvt_{v}_fpn_1x_coco.py (lr 2e-4; L: 8 GPUs x 1, lr 2e-4 / 1.4)
    V1_SETTINGS[f'mask_rcnn/pvt_{_v}_1x.py'] = (
        det_row(2e-4 /
                1.4, batch=1, base=8, drop_path=_dp) if _v == 'l' else det_row(2e-4, drop_path=_dp))
    V1_SETTINGS[f'mask_rcnn/pvt_{_v}_3x_ms.py'] = det_row(2e-4, epochs=36, steps=(27, 33),
                                                          train=MS_TRAIN, drop_path=_dp)
    # Semantic FPN: the paper's 80k (4 GPUs x 4, lr 1e-4) and the released 40k (8 x 4, lr 2e-4)
    V1_SETTINGS[f'sem_fpn/pvt_{_v}_80k.py'] = seg_row(1e-4, 16, 80000)
    V1_SETTINGS[f'sem_fpn/pvt_{_v}_40k.py'] = seg_row(2e-4, 32, 40000)
# retinanet_pvt_s_fpn_1x_coco_640.py: train and test at (1066, 640) (paper Table 11)
V1_SETTINGS['retinanet/pvt_s_1x_640.py'] = det_row(1e-4, train=('Resize', (1066, 640)),
                                                   test=('Resize', (1066, 640)))
V1_SETTINGS['sem_fpn/pvt_l_320k_msflip.py'] = seg_row(1e-4, 16, 320000)
# Fig. 5, random init: the paper does not say that the schedule changed
V1_SETTINGS['retinanet/pvt_s_1x_scratch.py'] = V1_SETTINGS['retinanet/pvt_s_1x.py']
V1_SETTINGS['retinanet/pvt_s_3x_ms_scratch.py'] = V1_SETTINGS['retinanet/pvt_s_3x_ms.py']
# Table 9: the wider PVT-S in PVT-S's RetinaNet recipe (the paper names no other)
V1_SETTINGS['retinanet/pvt_s_wide_1x.py'] = V1_SETTINGS['retinanet/pvt_s_1x.py']
# Trans2Seg (Table 7): the Sec. 5.3 settings (4 GPUs x 4, lr 1e-4), 40k iterations
V1_SETTINGS['trans2seg/pvt_s_40k.py'] = seg_row(1e-4, 16, 40000)
# detr_pvt_s_8x2_50ep_coco.py: short side from 640..800 step 32, flip, no crop, pad 32
V1_SETTINGS['detr/pvt_s_50e.py'] = dict(
    det_row(1e-4, epochs=50, steps=(33, ),
            test=DET_TEST), clip_grad=0.1, backbone_lr_mult=0.1, warmup_iters=None,
    train_resize=('RandomChoiceResize', tuple((1333, s) for s in range(640, 801, 32))))


def _resize_of(pipeline,
               types=('Resize', 'RandomResize', 'RandomChoiceResize', 'mmpvt.AlignResize')):
    resizes = [t for t in pipeline if t.type in types]
    assert len(resizes) == 1, f'expected one resize in {pipeline}'
    t = resizes[0]
    assert t.keep_ratio is True
    if t.type == 'RandomChoiceResize':
        return (t.type, tuple(tuple(x) for x in t.scales))
    scale = tuple(tuple(x) for x in t.scale) if isinstance(t.scale[0], (list, tuple)) \
        else tuple(t.scale)
    return (t.type, scale, tuple(t.ratio_range)) if t.get('ratio_range') else (t.type, scale)


def settings_of(cfg):
    """The row of the settings table this config actually implements."""
    wrapper = cfg.optim_wrapper
    keys = (wrapper.get('paramwise_cfg') or {}).get('custom_keys', {})
    train = cfg.train_dataloader.dataset.pipeline
    crops = [t for t in train if t.type == 'RandomCrop']
    out = dict(optimizer=wrapper.optimizer.type, lr=wrapper.optimizer.lr,
               weight_decay=wrapper.optimizer.weight_decay, batch=cfg.train_dataloader.batch_size,
               amp=wrapper.type == 'AmpOptimWrapper', base_batch=cfg.auto_scale_lr.base_batch_size,
               clip_grad=(wrapper.get('clip_grad')
                          or {}).get('max_norm'), backbone_lr_mult=keys.get('backbone',
                                                                            {}).get('lr_mult', 1.0),
               drop_path=cfg.model.backbone.drop_path_rate,
               pad=cfg.model.data_preprocessor.get('pad_size_divisor'),
               train_resize=_resize_of(train), crop=tuple(crops[0].crop_size) if crops else None,
               test_resize=_resize_of(cfg.test_dataloader.dataset.pipeline))
    schedulers = {s.type: s for s in cfg.param_scheduler}
    if cfg.train_cfg.type == 'EpochBasedTrainLoop':
        out.update(epochs=cfg.train_cfg.max_epochs,
                   steps=list(schedulers['MultiStepLR'].milestones),
                   warmup_iters=schedulers['LinearLR'].end if 'LinearLR' in schedulers else None)
    else:
        poly = schedulers['PolyLR']
        assert poly.end == cfg.train_cfg.max_iters and poly.eta_min == 0.0
        out.update(iters=cfg.train_cfg.max_iters, poly_power=poly.power)
    return out


# The authors' recipes: each process of their runs drew its own random numbers (docs/configs.md),
# so every rank gets its own seed. Not the demos (CPU runs, some seeded for repeatability), nor
# mmdet's/mmseg's own recipes: the stock-head configs (held to their stock config by
# tests/test_head_configs.py) and Table 10's ResNet-50+GC baseline, mmdet's config unchanged.
MMDET_RECIPES = {'configs/mask_rcnn/r50_gc_r4_1x.py'}


@pytest.mark.parametrize('path', [
    c for c in CONFIGS
    if not c.startswith('configs/demo/') and c not in HEADS and c not in MMDET_RECIPES
])
def test_each_rank_draws_its_own_random_numbers_as_the_authors_processes_did(path):
    assert load(path).randomness == dict(seed=None, diff_rank_seed=True)


@pytest.mark.parametrize('path', sorted(V1_SETTINGS))
def test_pvt_v1_config_follows_the_authors_settings(path):
    expected = V1_SETTINGS[path]
    got = settings_of(load('configs/' + path))
    assert got.keys() == expected.keys()

    def same(a, b):  # lr values such as 2e-4 / 1.4: equal up to rounding
        if isinstance(b, float) and isinstance(a, (int, float)):
            return math.isclose(a, b, rel_tol=1e-12)
        return a == b

    diff = {k: (got[k], expected[k]) for k in got if not same(got[k], expected[k])}
    assert not diff, f'{path}: (config, authors) differ in {diff}'


@pytest.mark.parametrize('key,value', [('optim_wrapper.optimizer.lr', 2e-4),
                                       ('train_dataloader.batch_size', 1),
                                       ('model.backbone.drop_path_rate', 0.2),
                                       ('auto_scale_lr.base_batch_size', 8)])
def test_settings_table_catches_a_changed_value(key, value):
    cfg = copy.deepcopy(load('configs/retinanet/pvt_s_1x.py'))
    cfg.merge_from_dict({key: value})
    assert settings_of(cfg) != V1_SETTINGS['retinanet/pvt_s_1x.py']


def test_every_pvt_v1_paper_config_has_a_settings_row():
    shipped = {
        p[len('configs/'):]
        for p in CONFIGS
        if '/pvt_' in p and '/pvt_v2_' not in p and not p.startswith('configs/demo/')
    }
    assert shipped == set(V1_SETTINGS)


def test_pvt_l_star_tests_at_six_aligned_scales_with_flip():
    tta = load('configs/sem_fpn/pvt_l_320k_msflip.py').tta_pipeline[1].transforms
    assert [(t.type, t.scale)
            for t in tta[0]] == [('mmpvt.AlignResize', (int(2048 * r), int(512 * r)))
                                 for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert [t.prob for t in tta[1]] == [0.0, 1.0]


# ---- one training step and one prediction per family (PVT-T, synthetic inputs) ----------------
def detection_inputs(with_mask, hw=(128, 160), num_classes=80):
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(batch_size=2, image_shapes=[(3, *hw)] * 2, num_items=[3, 2],
                          num_classes=num_classes, with_mask=with_mask)


def check_train_step_and_predict(cfg, kind):
    """Build cfg.model, run one loss+backward (every backbone weight gets a gradient) and one
    prediction of a batch of 2 synthetic 128x160 images."""
    model = registry_of(cfg).build(cfg.model)
    model.init_weights()
    packed = segmentation_inputs() if kind == 'seg' else detection_inputs(kind == 'mask')
    model.train()
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.backbone.parameters())
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 2
    if kind == 'seg':
        assert results[0].pred_sem_seg.data.shape[-2:] == (128, 160)
    else:
        assert 'bboxes' in results[0].pred_instances


@pytest.mark.parametrize('path,kind', [
    ('configs/retinanet/pvt_t_1x.py', 'det'),
    ('configs/mask_rcnn/pvt_t_1x.py', 'mask'),
    ('configs/sem_fpn/pvt_t_80k.py', 'seg'),
    ('configs/detr/pvt_s_50e.py', 'det'),
])
def test_family_trains_one_step_and_predicts(path, kind):
    cfg = copy.deepcopy(load(path))
    cfg.model.backbone.arch = 'tiny'  # PVT-T for every family
    cfg.model.backbone.init_cfg = None
    check_train_step_and_predict(cfg, kind)


# ---- PVTv2 recipes: parameter counts and the authors' settings ----------------------------------
# Expected sizes are independent of our configs: the backbone from the official key table (head
# dropped), the rest from the neck and heads of mmdet's/mmseg's stock configs with the FPN's input
# widths set to PVTv2's.
STOCK = {
    'retinanet': ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', ('neck', 'bbox_head')),
    'mask_rcnn':
    ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', ('neck', 'rpn_head', 'roi_head')),
    'cascade_mask_rcnn':
    ('mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py', ('neck', 'rpn_head')),
    'atss': ('mmdet::atss/atss_r50_fpn_1x_coco.py', ('neck', 'bbox_head')),
    'gfl': ('mmdet::gfl/gfl_r50_fpn_1x_coco.py', ('neck', 'bbox_head')),
    'sparse_rcnn': ('mmdet::sparse_rcnn/'
                    'sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco.py',
                    ('neck', 'rpn_head', 'roi_head')),
    'sem_fpn': ('mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py', ('neck', 'decode_head')),
}
# The authors' PVTv2 recipes: every other PVTv2 config is one of the heads users pair PVTv2 with
# (mmdet's / mmseg's own configs, specified in tests/test_head_configs.py).
V2_CONFIGS = [
    p for p in CONFIGS if '/pvt_v2_' in p and not p.startswith('configs/demo/') and p not in HEADS
]


def cascade_bbox_head_params(num_classes=80):
    """Hand count of one authors' Cascade bbox head: 4 x (3x3 conv 256->256, no bias, + BN),
    fc 256*7*7 -> 1024, cls 1024 -> 81, class-specific reg 1024 -> 4 * 80."""
    convs = 4 * (256 * 256 * 9 + 2 * 256)
    fc = 256 * 7 * 7 * 1024 + 1024
    return convs + fc + (1024 * (num_classes + 1) + num_classes + 1) + (1024 * 4 * num_classes +
                                                                        4 * num_classes)


@functools.lru_cache(maxsize=None)
def stock_head_params(family, in_channels):
    from mmengine.hub import get_config
    path, parts = STOCK[family]
    cfg = get_config(path)
    registry = registry_of(cfg)
    cfg.model.neck.in_channels = list(in_channels)
    with torch.device('meta'):  # sizes only
        total = sum(
            parameter_count(registry.build(copy.deepcopy(cfg.model[part]))) for part in parts)
        # cascade: the stock RoI head (a mask head per stage) with the authors' bbox heads
        if family == 'cascade_mask_rcnn':
            roi = registry.build(copy.deepcopy(cfg.model.roi_head))
            total += sum(p.numel() for p in roi.parameters())
            total -= sum(p.numel() for p in roi.bbox_head.parameters())
            total += roi.num_stages * cascade_bbox_head_params()
    return total


@pytest.mark.parametrize('path', V2_CONFIGS)
def test_pvt_v2_model_size_is_official_backbone_plus_standard_neck_and_heads(path):
    cfg = load(path)
    model = build(path)
    arch = cfg.model.backbone.arch
    backbone = sum(p.numel() for p in model.backbone.parameters())
    assert backbone == official_backbone_params(arch)
    family = path.split('/')[1]
    dims = (32, 64, 160, 256) if arch == 'b0' else (64, 128, 320, 512)
    rest = sum(p.numel() for p in model.parameters()) - backbone
    assert rest == stock_head_params(family, dims)


def test_gfl_b2_size_is_the_authors_reported_33_11m():
    # tests/data/pvt_v2_facts.md Sec. 7 (get_flops of the authors' GFL B2 config): 33.11 M
    params = sum(p.numel() for p in build('configs/gfl/pvt_v2_b2_3x_ms.py').parameters())
    assert round(params / 1e6, 2) == 33.11


# The authors' settings per recipe (facts file Sec. 4-5): optimizer, lr, weight decay, images per
# GPU, base batch, epochs/iterations, lr steps, fp16.
V2_SETTINGS = {
    'retinanet/pvt_v2_{}_1x.py':
    dict(opt='AdamW', lr=1e-4, wd=1e-4, batch=2, base=16, epochs=12, steps=[8, 11], amp=False),
    'mask_rcnn/pvt_v2_{}_1x.py':
    dict(opt='AdamW', lr=2e-4, wd=1e-4, batch=2, base=16, epochs=12, steps=[8, 11], amp=False),
    'mask_rcnn/pvt_v2_b2_3x_ms.py':
    dict(opt='AdamW', lr=1e-4, wd=0.05, batch=2, base=16, epochs=36, steps=[27, 33], amp=False),
    'mask_rcnn/pvt_v2_b2_li_3x_ms.py':
    dict(opt='AdamW', lr=1e-4, wd=0.05, batch=2, base=16, epochs=36, steps=[27, 33], amp=True),
    'sparse_rcnn/pvt_v2_b2_3x_ms.py':
    dict(opt='AdamW', lr=2.5e-5 / 1.4, wd=1e-4, batch=1, base=8, epochs=36, steps=[27, 33],
         amp=False),
    'sparse_rcnn/pvt_v2_b2_li_3x_ms.py':
    dict(opt='AdamW', lr=2.5e-5, wd=1e-4, batch=2, base=16, epochs=36, steps=[27, 33], amp=False),
}
for _fam in ('cascade_mask_rcnn', 'atss', 'gfl'):
    for _v in ('b2', 'b2_li'):
        V2_SETTINGS[f'{_fam}/pvt_v2_{_v}_3x_ms.py'] = dict(opt='AdamW', lr=1e-4, wd=0.05, batch=2,
                                                           base=16, epochs=36, steps=[27,
                                                                                      33], amp=True)


def v2_settings_table():
    rows = []
    for pattern, spec in V2_SETTINGS.items():
        for v in (V2 if '{}' in pattern else (None, )):
            path = 'configs/' + pattern.format(v)
            row = dict(spec)
            if v in ('b4', 'b5'):  # 1 image per GPU, lr / 1.4
                row.update(lr=spec['lr'] / 1.4, batch=1, base=8)
            rows.append((path, row))
    return rows


@pytest.mark.parametrize('path,spec', v2_settings_table())
def test_pvt_v2_detection_configs_follow_the_authors_settings(path, spec):
    cfg = load(path)
    wrapper = cfg.optim_wrapper
    assert wrapper.optimizer.type == spec['opt'] and set(
        wrapper.optimizer) <= {'type', 'lr', 'weight_decay', 'betas'}
    assert wrapper.optimizer.lr == pytest.approx(spec['lr'], rel=1e-12)
    assert wrapper.optimizer.weight_decay == spec['wd']
    assert (wrapper.type == 'AmpOptimWrapper') == spec['amp']
    assert cfg.train_dataloader.batch_size == spec['batch']
    assert cfg.auto_scale_lr.base_batch_size == spec['base']
    assert cfg.train_cfg.max_epochs == spec['epochs']
    steps = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0].milestones
    assert steps == spec['steps']
    assert cfg.model.backbone.drop_path_rate == 0.1
    assert cfg.model.data_preprocessor.pad_size_divisor == 32
    if spec['wd'] == 0.05:  # the 3x recipe: no decay on any parameter named *norm*
        assert wrapper.paramwise_cfg.custom_keys['norm'] == dict(decay_mult=0.0)
        assert wrapper.get('clip_grad') is None


def test_pvt_v2_3x_pipeline_is_multiscale_with_crop_policy():
    pipeline = load('configs/atss/pvt_v2_b2_3x_ms.py').train_dataloader.dataset.pipeline
    choice = [t for t in pipeline if t.type == 'RandomChoice'][0]
    plain, crop = choice.transforms
    assert [s[1] for s in plain[0].scales] == list(range(480, 801, 32))
    assert [t.type for t in crop] == ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']
    assert crop[1].crop_size == (384, 600) and crop[1].crop_type == 'absolute_range'
    ins = load('configs/cascade_mask_rcnn/pvt_v2_b2_3x_ms.py').train_dataloader.dataset.pipeline
    assert ins[1] == dict(type='LoadAnnotations', with_bbox=True, with_mask=True)


def test_cascade_heads_are_the_authors_giou_4conv1fc():
    heads = load('configs/cascade_mask_rcnn/pvt_v2_b2_3x_ms.py').model.roi_head.bbox_head
    assert [h.type for h in heads] == ['ConvFCBBoxHead'] * 3
    assert all(h.loss_bbox == dict(type='GIoULoss', loss_weight=10.0) and h.reg_decoded_bbox
               for h in heads)
    assert [h.bbox_coder.target_stds for h in heads] == [[0.1, 0.1, 0.2, 0.2],
                                                         [0.05, 0.05, 0.1, 0.1],
                                                         [0.033, 0.033, 0.067, 0.067]]


@pytest.mark.parametrize('arch', V2)
def test_pvt_v2_sem_fpn_follows_the_authors_recipe(arch):
    cfg = load(f'configs/sem_fpn/pvt_v2_{arch}_40k.py')
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=2e-4, weight_decay=1e-4)
    assert cfg.train_dataloader.batch_size == 4 and cfg.auto_scale_lr.base_batch_size == 32
    assert cfg.train_cfg.max_iters == 40000 and cfg.train_cfg.val_interval == 4000
    assert cfg.param_scheduler[0].end == 40000 and cfg.param_scheduler[0].eta_min == 0.0
    assert dict(type='mmpvt.AlignResize', scale=(2048, 512), keep_ratio=True,
                size_divisor=32) in cfg.test_dataloader.dataset.pipeline
    assert cfg.model.decode_head.num_classes == 150 and cfg.model.decode_head.channels == 128


@pytest.mark.parametrize('path,kind', [
    ('configs/cascade_mask_rcnn/pvt_v2_b2_3x_ms.py', 'mask'),
    ('configs/atss/pvt_v2_b2_3x_ms.py', 'det'),
    ('configs/gfl/pvt_v2_b2_3x_ms.py', 'det'),
    ('configs/sparse_rcnn/pvt_v2_b2_3x_ms.py', 'det'),
    ('configs/sem_fpn/pvt_v2_b0_40k.py', 'seg'),
])
def test_pvt_v2_family_trains_one_step_and_predicts(path, kind):
    cfg = copy.deepcopy(load(path))
    if kind == 'mask':  # fewer proposals: the step's cost is in the RoI heads, not the backbone
        cfg.model.train_cfg.rpn_proposal.max_per_img = 64
        cfg.model.test_cfg.rpn.max_per_img = 64
    if 'sparse_rcnn' in path:
        cfg.model.rpn_head.num_proposals = 30
        cfg.model.test_cfg.rcnn.max_per_img = 30
    cfg.model.backbone.arch = 'b0'
    cfg.model.backbone.init_cfg = None
    cfg.model.neck.in_channels = [32, 64, 160, 256]
    check_train_step_and_predict(cfg, kind)
