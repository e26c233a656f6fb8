"""PVTv2 with the heads users pair it with (DETR family, Mask2Former, UperNet, Cityscapes): each
config is mmdet's / mmseg's own config with PVTv2 in place of its backbone, starts from the
authors' ImageNet weights, has the size of the official backbone plus the stock head, and trains
on the demo data."""
import copy
import functools
import math
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.hub import get_config

import mmpvt  # noqa: F401
from mmpvt.models import PVTv2
from mmpvt.models.builder import registry_of
from .helpers import (REPO, build_model, data_env, official_backbone_params, parameter_count,
                      repository_config, tool_process_state)

pytestmark = pytest.mark.slow  # whole models and training runs: not in test-fast

V2_URL = 'https://github.com/whai362/PVT/releases/download/v2/pvt_v2_{}.pth'
STAGES_1_TO_4 = [64, 128, 320, 512]  # PVTv2-B1..B5 stage widths
STAGES_2_TO_4 = [128, 320, 512]  # what the DETR family reads (strides 8-32, as ResNet's C3-C5)

# config -> (the stock config it inherits, the stock's inputs that take PVTv2's widths, the demo
# data it trains on). Everything else of the stock config stays as it is, but where named below.
HEADS = {
    'configs/deformable_detr/pvt_v2_b2_refine_twostage_50e.py':
    ('mmdet::deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py', {
        'neck.in_channels': STAGES_2_TO_4
    }, 'det'),
    'configs/dino/pvt_v2_b2_4scale_12e.py': ('mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py', {
        'neck.in_channels': STAGES_2_TO_4
    }, 'det'),
    'configs/mask2former/pvt_v2_b2_lsj_50e_coco.py':
    ('mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py', {
        'panoptic_head.in_channels': STAGES_1_TO_4
    }, 'instance'),
    'configs/mask2former/pvt_v2_b5_lsj_50e_coco.py':
    ('mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py', {
        'panoptic_head.in_channels': STAGES_1_TO_4
    }, 'instance'),
    'configs/mask2former/pvt_v2_b2_160k_ade20k.py':
    ('mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py', {
        'decode_head.in_channels': STAGES_1_TO_4
    }, 'seg'),
    'configs/mask2former/pvt_v2_b5_160k_ade20k.py':
    ('mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py', {
        'decode_head.in_channels': STAGES_1_TO_4
    }, 'seg'),
    'configs/upernet/pvt_v2_b2_160k_ade20k.py':
    ('mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py', {
        'decode_head.in_channels': STAGES_1_TO_4,
        'auxiliary_head.in_channels': 320
    }, 'seg'),
    'configs/upernet/pvt_v2_b2_80k_cityscapes.py':
    ('mmseg::upernet/upernet_r50_4xb2-80k_cityscapes-512x1024.py', {
        'decode_head.in_channels': STAGES_1_TO_4,
        'auxiliary_head.in_channels': 320
    }, 'seg'),
    'configs/sem_fpn/pvt_v2_b2_80k_cityscapes.py':
    ('mmseg::sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py', {
        'neck.in_channels': STAGES_1_TO_4
    }, 'seg'),
}
# The Cityscapes configs replace ResNet's SGD by the optimizer of a PVTv2 recipe they name:
# (recipe, lr scaled by the batch size: the authors' Semantic FPN recipes keep lr per image).
OPTIMIZER_FROM = {
    'configs/upernet/pvt_v2_b2_80k_cityscapes.py':
    ('configs/upernet/pvt_v2_b2_160k_ade20k.py', False),
    'configs/sem_fpn/pvt_v2_b2_80k_cityscapes.py': ('configs/sem_fpn/pvt_v2_b2_40k.py', True),
}
# The backbone each head config names, from its file name.
ARCH = {path: os.path.basename(path).split('_')[2] for path in HEADS}

load = repository_config


@functools.lru_cache(maxsize=None)
def stock(path):
    return get_config(path)


def without_scope(value):
    """A config value without the `_scope_` keys mmengine adds to what comes from a `pkg::` base."""
    if isinstance(value, dict):
        return {k: without_scope(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(without_scope(v) for v in value)
    return value


def with_widths(model_cfg, widths):
    """A copy of a model config with `widths` ({'dotted.key': value}) set."""
    model_cfg = copy.deepcopy(model_cfg)
    for key, value in widths.items():
        *parents, last = key.split('.')
        node = model_cfg
        for part in parents:
            node = node[part]
        node[last] = value
    return model_cfg


def test_every_head_config_is_shipped_and_nothing_else_in_their_folders():
    folders = ('deformable_detr', 'dino', 'mask2former', 'upernet')
    shipped = {
        f'configs/{folder}/{name}'
        for folder in folders
        for name in os.listdir(os.path.join(REPO, 'configs', folder)) if name.endswith('.py')
    }
    assert shipped == {p for p in HEADS if p.split('/')[1] in folders}
    assert all(os.path.isfile(os.path.join(REPO, p)) for p in HEADS)


@pytest.mark.parametrize('path', sorted(HEADS))
def test_head_config_is_the_stock_config_with_pvt_v2_from_the_authors_weights(path):
    """The whole config equals the stock one but for the backbone, the widths it feeds, the
    plugin import and (mmseg) the ResNet-only `pretrained`; and the optimizer where the config
    names another recipe's."""
    stock_path, widths, _ = HEADS[path]
    cfg, base = without_scope(load(path).to_dict()), stock(stock_path).to_dict()
    imports = base.pop('custom_imports', {}).get('imports', [])  # mmseg's Mask2Former: mmdet's
    imports = [imports] if isinstance(imports, str) else list(imports)
    assert cfg.pop('custom_imports') == dict(imports=imports + ['mmpvt'],
                                             allow_failed_imports=False)
    backbone = cfg['model'].pop('backbone')
    assert backbone == dict(
        type='mmpvt.PVTv2', arch=ARCH[path], drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=V2_URL.format(ARCH[path])),
        **({
            'out_indices': (1, 2, 3)
        } if 'detr' in path or 'dino' in path else {}))
    base['model'].pop('backbone')
    if 'pretrained' in cfg['model']:
        assert cfg['model'].pop('pretrained') is None
        base['model'].pop('pretrained', None)
    base['model'] = with_widths(base['model'], widths)
    # the keys that take PVTv2's LayerNorms off weight decay: their own test below
    for key in [k for k in cfg if k.startswith('pvt_v2_') and k.endswith('_norm_keys')]:
        cfg.pop(key)
    custom_keys = cfg.get('optim_wrapper', {}).get('paramwise_cfg', {}).get('custom_keys', {})
    for key in [k for k in custom_keys if k.startswith('backbone.stages.')]:
        custom_keys.pop(key)
    if path in OPTIMIZER_FROM:  # its own test below
        for key in ('optim_wrapper', 'param_scheduler', 'max_iters', 'auto_scale_lr'):
            cfg.pop(key, None), base.pop(key, None)
    diff = {k for k in cfg.keys() | base.keys() if cfg.get(k) != base.get(k)}
    assert not diff, f'{path} differs from {stock_path} in {sorted(diff)}'


@pytest.mark.parametrize('path', sorted(OPTIMIZER_FROM))
def test_cityscapes_config_trains_with_the_optimizer_of_its_pvt_v2_recipe(path):
    recipe_path, per_image = OPTIMIZER_FROM[path]
    cfg, recipe = load(path), load(recipe_path)
    ours, theirs = cfg.optim_wrapper.optimizer, recipe.optim_wrapper.optimizer
    assert theirs.type == 'AdamW'
    assert without_scope(dict(ours, lr=None)) == without_scope(dict(theirs, lr=None))
    batch = cfg.auto_scale_lr.base_batch_size
    assert batch == cfg.train_dataloader.batch_size * 4  # 4 GPUs, as the stock Cityscapes configs
    expected_lr = theirs.lr * batch / recipe.auto_scale_lr.base_batch_size if per_image \
        else theirs.lr
    assert math.isclose(ours.lr, expected_lr, rel_tol=1e-12)
    ours, theirs = (without_scope(c.to_dict()['param_scheduler']) for c in (cfg, recipe))
    assert ours[-1].pop('end') == cfg.train_cfg.max_iters == 80000  # the recipe's shape, 80k long
    theirs[-1].pop('end')
    assert ours == theirs


# How each recipe trains the backbone: (its lr multiplier, whether its LayerNorms are free of
# weight decay). Mask2Former's recipe: lr x0.1 and no decay on norms (its norm_decay_mult=0);
# the DETRs': lr x0.1, every norm decayed as theirs are; mmseg's transformer UperNet: no decay on
# norms (its 'norm' key); the authors' Semantic FPN: decay on every parameter.
BACKBONE_TRAINING = {
    'deformable_detr': (0.1, False),
    'dino': (0.1, False),
    'mask2former': (0.1, True),
    'upernet': (1.0, True),
    'sem_fpn': (1.0, False)
}


def optimizer_settings(cfg, model):
    """{parameter name: (lr, weight decay)} of the optimizer `cfg.optim_wrapper` builds (frozen
    parameters, which it leaves out, are not there)."""
    from mmengine.optim import build_optim_wrapper
    registry_of(cfg)  # the config's scope, whose constructors and wrappers build it
    optimizer = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper)).optimizer
    by_id = {
        id(p): (group['lr'], group['weight_decay'])
        for group in optimizer.param_groups
        for p in group['params']
    }
    return {name: by_id[id(p)] for name, p in model.named_parameters() if id(p) in by_id}


@pytest.mark.parametrize('path', sorted(HEADS))
def test_head_config_trains_the_backbone_as_its_recipe_says(path):
    """Every PVTv2 parameter gets the recipe's backbone lr; its LayerNorms' weight decay is 0
    where the recipe exempts norms, the base value where it does not; the head's parameters
    train exactly as in the stock config (the Cityscapes recipes: their own test above)."""
    cfg = load(path)
    with torch.device('meta'):
        model = build_model(cfg)
    got = optimizer_settings(cfg, model)
    base = cfg.optim_wrapper.optimizer
    lr_mult, norms_exempt = BACKBONE_TRAINING[path.split('/')[1]]
    norms = {
        f'backbone.{module_name}.{name}'
        for module_name, module in model.backbone.named_modules()
        if isinstance(module, torch.nn.LayerNorm) for name, _ in module.named_parameters()
    }
    assert len(norms) > 0
    assert {n
            for n in got if n.startswith('backbone.')
            } == {f'backbone.{n}'
                  for n, _ in model.backbone.named_parameters()}  # all of it trains
    for name, (lr, decay) in got.items():
        if name.startswith('backbone.'):
            expected_decay = 0.0 if name in norms and norms_exempt else base.weight_decay
            assert (lr, decay) == (pytest.approx(base.lr * lr_mult), expected_decay), name
    if path in OPTIMIZER_FROM:
        return
    stock_path, widths, _ = HEADS[path]
    stock_cfg = stock(stock_path)
    stock_cfg.model = with_widths(stock_cfg.model, widths)
    with torch.device('cpu' if 'swin' in stock_path else 'meta'):
        stock_model = build_model(stock_cfg)
    expected = optimizer_settings(stock_cfg, stock_model)
    head = {n: v for n, v in got.items() if not n.startswith('backbone.')}
    assert head == {n: v for n, v in expected.items() if not n.startswith('backbone.')}


@pytest.mark.parametrize('path', sorted(HEADS))
def test_head_config_size_is_the_official_backbone_plus_the_stock_head(path):
    stock_path, widths, _ = HEADS[path]
    base = stock(stock_path)
    with torch.device('meta'):  # sizes only
        model = build_model(load(path))
    stock_cfg = with_widths(base.model, widths)
    # on the meta device too, but Swin, which reads tensor values while it is built
    with torch.device('cpu' if 'swin' in stock_path else 'meta'):
        stock_model = registry_of(base).build(stock_cfg)
    assert isinstance(model.backbone, PVTv2) and model.backbone.arch_name == ARCH[path]
    head = parameter_count(stock_model) - parameter_count(stock_model.backbone)
    assert parameter_count(model.backbone) == official_backbone_params(ARCH[path])
    assert parameter_count(model) == official_backbone_params(ARCH[path]) + head


# ---- a few training iterations on the demo data --------------------------------------------
DATASETS = f'{REPO}/configs/_base_/datasets'


def on_demo_data(cfg, kind, work_dir, iterations=2, side=128):
    """`cfg` training `iterations` steps on the demo data (the dataset base of `kind` with its
    pipeline, images resized and padded to `side` px instead of 256: the heads' cost grows with
    the pixels) with 2 images per step, from random weights, saving nothing."""
    demo = Config.fromfile(f'{DATASETS}/demo_shapes_{kind}.py')
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    preprocessor = cfg.model.data_preprocessor
    if preprocessor.get('size'):  # mmseg pads to the crop size
        preprocessor.size = (side, side)
    for augment in preprocessor.get('batch_augments') or []:  # mmdet's fixed-size pad
        augment.size = (side, side)
    pipeline = copy.deepcopy(demo.train_pipeline)
    for step in pipeline:
        for key in ('scale', 'crop_size'):
            if key in step:
                step[key] = (side, side)
    cfg.train_dataloader = dict(demo.train_dataloader, batch_size=2, num_workers=0,
                                persistent_workers=False)
    cfg.train_dataloader.dataset.pipeline = pipeline
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iterations)
    for part in ('val', 'test'):
        cfg[f'{part}_dataloader'] = cfg[f'{part}_cfg'] = cfg[f'{part}_evaluator'] = None
    cfg.default_hooks = dict(cfg.default_hooks, checkpoint=None,
                             logger=dict(type='LoggerHook', interval=1))
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.mark.parametrize('path', sorted(HEADS))
def test_head_config_trains_on_the_demo_data(path, tiny_shapes, tmp_path):
    from mmengine.runner import Runner

    # DINO's two-stage picks 900 queries among the encoder's tokens: 256 px gives 1020
    side = 256 if 'detr' in path or 'dino' in path else 128
    losses = []
    with tool_process_state('train.py', [], env=data_env(tiny_shapes)):
        cfg = on_demo_data(load(path), HEADS[path][2], tmp_path, side=side)
        runner = Runner.from_cfg(cfg)
        before = {k: v.clone() for k, v in runner.model.backbone.state_dict().items()}
        runner.register_hook(LossRecorder(losses))
        runner.train()
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    after = runner.model.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the backbone learns
    assert not list(tmp_path.rglob('*.pth'))  # nothing saved


class LossRecorder(Hook):
    """Keeps each training iteration's total loss."""

    def __init__(self, losses):
        self.losses = losses

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(outputs['loss'].item())
