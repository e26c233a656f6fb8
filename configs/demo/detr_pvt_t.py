# Demo: DETR + PVT-T (last stage only) trained from scratch on the synthetic shapes (CPU).
# Changes against the paper config: data, image size, schedule, num_classes, PVT-T instead of
# PVT-S; no pretrained weights. DETR learns slowly: expect a learning curve, not a good AP.
_base_ = '../detr/pvt_s_50e.py'

# The demo data of ../_base_/datasets/demo_shapes_det.py. mmdet has no DETR model fragment to
# compose with it, and the paper config brings COCO's dataloaders, so the fragment is read here
# and replaces them (`from mmengine import Config` is the one import an mmengine config may use).
from mmengine import Config  # noqa: E402

_shapes = Config.fromfile('{{ fileDirname }}/../_base_/datasets/demo_shapes_det.py')
data_root = _shapes.data_root
metainfo = _shapes.metainfo
img_scale = _shapes.img_scale
test_pipeline = _shapes.test_pipeline
train_pipeline = [  # the paper's multi-scale training, at the demo's image size
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoiceResize', scales=[(224, 224), (256, 256), (288, 288)], keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(_delete_=True, **_shapes.train_dataloader)
train_dataloader['dataset']['pipeline'] = train_pipeline
val_dataloader = dict(_delete_=True, **_shapes.val_dataloader)
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, **_shapes.val_evaluator)
test_evaluator = val_evaluator
del Config, _shapes

model = dict(backbone=dict(arch='tiny', init_cfg=None), bbox_head=dict(num_classes=4))

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[5], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=1, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=8)
