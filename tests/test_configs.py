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
from mmpvt.models import PVT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, 'configs', '*',
                                                                           '*.py')))
URL = 'https://github.com/whai362/PVT/releases/download/v2/pvt_{}.pth'

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


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_a_model_with_mmpvt_backbone(path):
    cfg = load(path)
    assert cfg.custom_imports == dict(imports=['mmpvt'], allow_failed_imports=False)
    assert cfg.model.backbone.type == 'mmpvt.PVT'
    model = build(path)
    assert isinstance(model.backbone, PVT)
    if not path.startswith('configs/demo/'):
        arch = cfg.model.backbone.arch
        assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=URL.format(arch))
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
