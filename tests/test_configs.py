"""Every shipped config builds; model sizes reproduce the paper; each family trains one step."""
import copy
import functools
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmpvt  # noqa: F401
from mmpvt.models import PVT, PVTv2

pytestmark = pytest.mark.slow  # whole models, training or subprocesses: not in test-fast

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'configs', '*',
                                                                           '*.py'))
                 if '/_base_/' not in p)  # fragments, not models
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
}
PAPER_TABLE = [(pattern.format(v), params[i]) for pattern, params in PAPER_PARAMS.items()
               for i, v in enumerate('tsml')]


def registry_for(cfg):
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return MODELS


@functools.lru_cache(maxsize=None)
def load(path):
    return Config.fromfile(os.path.join(REPO, path))


@functools.lru_cache(maxsize=4)
def build(path):
    cfg = load(path)
    # deep copy: some heads (DETRHead) write into the config dict they are given
    return registry_for(cfg).build(copy.deepcopy(cfg.model))


def test_all_families_are_shipped():
    expected = {f'{fam}/pvt_{v}_{s}.py' for fam in ('retinanet', 'mask_rcnn') for v in 'tsml'
                for s in ('1x', '3x_ms')}
    expected |= {f'sem_fpn/pvt_{v}_80k.py' for v in 'tsml'}
    expected |= {'sem_fpn/pvt_l_320k_msflip.py', 'detr/pvt_s_50e.py'}
    assert expected <= {p[len('configs/'):] for p in CONFIGS}


def test_all_pvt_v2_recipes_are_shipped():
    expected = {f'{fam}/pvt_v2_{v}_1x.py' for fam in ('retinanet', 'mask_rcnn') for v in V2}
    expected |= {f'{fam}/pvt_v2_{v}_3x_ms.py' for v in ('b2', 'b2_li')
                 for fam in ('mask_rcnn', 'cascade_mask_rcnn', 'atss', 'gfl', 'sparse_rcnn')}
    expected |= {f'sem_fpn/pvt_v2_{v}_40k.py' for v in V2} | {'demo/retinanet_pvt_v2_b0.py'}
    assert expected <= {p[len('configs/'):] for p in CONFIGS}


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_a_model_with_mmpvt_backbone(path):
    cfg = load(path)
    assert cfg.custom_imports == dict(imports=['mmpvt'], allow_failed_imports=False)
    v2 = cfg.model.backbone.type == 'mmpvt.PVTv2'
    assert cfg.model.backbone.type == ('mmpvt.PVTv2' if v2 else 'mmpvt.PVT')
    model = build(path)
    assert isinstance(model.backbone, PVTv2 if v2 else PVT)
    if not path.startswith('configs/demo/'):
        arch = cfg.model.backbone.arch
        url = (V2_URL if v2 else URL).format(arch)
        assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=url)
        if not v2:
            assert cfg.auto_scale_lr.base_batch_size == 16


@pytest.mark.parametrize('path,paper_millions', PAPER_TABLE)
def test_parameter_count_matches_paper(path, paper_millions):
    params = sum(p.numel() for p in build('configs/' + path).parameters())
    assert abs(params / 1e6 - paper_millions) < 0.1


def test_paper_schedules_and_batch_sizes():
    retina = load('configs/retinanet/pvt_s_1x.py')
    assert retina.train_dataloader.batch_size == 2 and retina.train_cfg.max_epochs == 12
    assert retina.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
    assert load('configs/mask_rcnn/pvt_s_1x.py').optim_wrapper.optimizer.lr == 2e-4
    ms = load('configs/mask_rcnn/pvt_s_3x_ms.py')
    assert ms.train_cfg.max_epochs == 36 and ms.param_scheduler[1].milestones == [27, 33]
    assert {'type': 'RandomResize', 'scale': [(1333, 640), (1333, 800)], 'keep_ratio': True} in \
        ms.train_dataloader.dataset.pipeline
    fpn = load('configs/sem_fpn/pvt_m_80k.py')
    assert fpn.train_dataloader.batch_size == 4 and fpn.train_cfg.max_iters == 80000
    assert fpn.param_scheduler[0].power == 0.9 and fpn.model.decode_head.num_classes == 150
    star = load('configs/sem_fpn/pvt_l_320k_msflip.py')
    assert star.train_cfg.max_iters == 320000 and star.param_scheduler[0].end == 320000
    assert star.model.backbone.arch == 'large' and 'tta_pipeline' in star
    detr = load('configs/detr/pvt_s_50e.py')
    assert detr.model.backbone.out_indices == (3,) and detr.model.neck.in_channels == [512]
    assert detr.train_cfg.max_epochs == 50 and detr.param_scheduler[0].milestones == [33]
    assert detr.optim_wrapper.paramwise_cfg.custom_keys['backbone'].lr_mult == 0.1
    assert detr.optim_wrapper.clip_grad.max_norm == 0.1
    assert [load(f'configs/retinanet/pvt_{v}_1x.py').model.backbone.drop_path_rate
            for v in 'tsml'] == [0.1, 0.1, 0.0, 0.0]


# ---- one training step and one prediction per family (PVT-T, synthetic inputs) ----------------
def detection_inputs(with_mask, hw=(128, 160), num_classes=80):
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(batch_size=2, image_shapes=[(3, *hw)] * 2, num_items=[3, 2],
                          num_classes=num_classes, with_mask=with_mask)


def segmentation_inputs(hw=(128, 160), num_classes=150):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=hw, ori_shape=hw, pad_shape=hw))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *hw)))
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 256, (3, *hw), dtype=torch.uint8) for _ in range(2)],
                data_samples=samples)


def check_train_step_and_predict(cfg, kind):
    """Build cfg.model, run one loss+backward (every backbone weight gets a gradient) and one
    prediction of a batch of 2 synthetic 128x160 images."""
    model = registry_for(cfg).build(cfg.model)
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
    'mask_rcnn': ('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', ('neck', 'rpn_head', 'roi_head')),
    'cascade_mask_rcnn': ('mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
                          ('neck', 'rpn_head')),
    'atss': ('mmdet::atss/atss_r50_fpn_1x_coco.py', ('neck', 'bbox_head')),
    'gfl': ('mmdet::gfl/gfl_r50_fpn_1x_coco.py', ('neck', 'bbox_head')),
    'sparse_rcnn': ('mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco.py',
                    ('neck', 'rpn_head', 'roi_head')),
    'sem_fpn': ('mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py', ('neck', 'decode_head')),
}
V2_CONFIGS = [p for p in CONFIGS if '/pvt_v2_' in p and not p.startswith('configs/demo/')]


def official_v2_backbone_params(official_v2_keys, arch):
    import math
    return sum(math.prod(s) for k, s in official_v2_keys[arch] if not k.startswith('head.'))


def cascade_bbox_head_params(num_classes=80):
    """Hand count of one authors' Cascade bbox head: 4 x (3x3 conv 256->256, no bias, + BN),
    fc 256*7*7 -> 1024, cls 1024 -> 81, class-specific reg 1024 -> 4 * 80."""
    convs = 4 * (256 * 256 * 9 + 2 * 256)
    fc = 256 * 7 * 7 * 1024 + 1024
    return convs + fc + (1024 * (num_classes + 1) + num_classes + 1) + (1024 * 4 * num_classes
                                                                         + 4 * num_classes)


@functools.lru_cache(maxsize=None)
def stock_head_params(family, in_channels):
    from mmengine.hub import get_config
    path, parts = STOCK[family]
    cfg = get_config(path)
    registry = registry_for(cfg)
    cfg.model.neck.in_channels = list(in_channels)
    total = sum(sum(p.numel() for p in registry.build(copy.deepcopy(cfg.model[part])).parameters())
                for part in parts)
    if family == 'cascade_mask_rcnn':  # stock RoI head (a mask head per stage), authors' bbox heads
        roi = registry.build(copy.deepcopy(cfg.model.roi_head))
        total += sum(p.numel() for p in roi.parameters())
        total -= sum(p.numel() for p in roi.bbox_head.parameters())
        total += roi.num_stages * cascade_bbox_head_params()
    return total


@pytest.mark.parametrize('path', V2_CONFIGS)
def test_pvt_v2_model_size_is_official_backbone_plus_standard_neck_and_heads(path, official_v2_keys):
    cfg = load(path)
    model = build(path)
    arch = cfg.model.backbone.arch
    backbone = sum(p.numel() for p in model.backbone.parameters())
    assert backbone == official_v2_backbone_params(official_v2_keys, arch)
    family = path.split('/')[1]
    dims = (32, 64, 160, 256) if arch == 'b0' else (64, 128, 320, 512)
    rest = sum(p.numel() for p in model.parameters()) - backbone
    assert rest == stock_head_params(family, dims)


def test_gfl_b2_size_is_the_authors_reported_33_11m():
    # whai362/PVT detection README, get_flops of gfl_pvt_v2_b2_fpn_3x_mstrain_fp16.py: 33.11 M
    params = sum(p.numel() for p in build('configs/gfl/pvt_v2_b2_3x_ms.py').parameters())
    assert round(params / 1e6, 2) == 33.11


# The authors' settings per recipe (facts file Sec. 4-5): optimizer, lr, weight decay, images per
# GPU, base batch, epochs/iterations, lr steps, fp16.
V2_SETTINGS = {
    'retinanet/pvt_v2_{}_1x.py': dict(opt='AdamW', lr=1e-4, wd=1e-4, batch=2, base=16, epochs=12,
                                     steps=[8, 11], amp=False),
    'mask_rcnn/pvt_v2_{}_1x.py': dict(opt='AdamW', lr=2e-4, wd=1e-4, batch=2, base=16, epochs=12,
                                     steps=[8, 11], amp=False),
    'mask_rcnn/pvt_v2_b2_3x_ms.py': dict(opt='AdamW', lr=1e-4, wd=0.05, batch=2, base=16,
                                         epochs=36, steps=[27, 33], amp=False),
    'mask_rcnn/pvt_v2_b2_li_3x_ms.py': dict(opt='AdamW', lr=1e-4, wd=0.05, batch=2, base=16,
                                            epochs=36, steps=[27, 33], amp=True),
    'sparse_rcnn/pvt_v2_b2_3x_ms.py': dict(opt='AdamW', lr=2.5e-5 / 1.4, wd=1e-4, batch=1, base=8,
                                           epochs=36, steps=[27, 33], amp=False),
    'sparse_rcnn/pvt_v2_b2_li_3x_ms.py': dict(opt='AdamW', lr=2.5e-5, wd=1e-4, batch=2, base=16,
                                              epochs=36, steps=[27, 33], amp=False),
}
for _fam in ('cascade_mask_rcnn', 'atss', 'gfl'):
    for _v in ('b2', 'b2_li'):
        V2_SETTINGS[f'{_fam}/pvt_v2_{_v}_3x_ms.py'] = dict(opt='AdamW', lr=1e-4, wd=0.05, batch=2,
                                                          base=16, epochs=36, steps=[27, 33],
                                                          amp=True)


def v2_settings_table():
    rows = []
    for pattern, spec in V2_SETTINGS.items():
        for v in (V2 if '{}' in pattern else (None,)):
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
    assert wrapper.optimizer.type == spec['opt'] and set(wrapper.optimizer) <= {
        'type', 'lr', 'weight_decay', 'betas'}
    assert wrapper.optimizer.lr == pytest.approx(spec['lr'], rel=1e-12)
    assert wrapper.optimizer.weight_decay == spec['wd']
    assert (wrapper.type == 'AmpOptimWrapper') == spec['amp']
    assert cfg.train_dataloader.batch_size == spec['batch']
    assert cfg.auto_scale_lr.base_batch_size == spec['base']
    assert cfg.train_cfg.max_epochs == spec['epochs']
    assert [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0].milestones == spec['steps']
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
    assert [h.bbox_coder.target_stds for h in heads] == [
        [0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]


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
