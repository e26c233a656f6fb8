# Demo: Mask R-CNN + PVT-T trained from scratch on the synthetic shapes (CPU).
# The paper's model (mask_rcnn/pvt_t_1x.py: mmdet's Mask R-CNN, PVT-T backbone) composed with the
# demo data (../_base_/datasets/demo_shapes_instance.py).
# Changes against the paper config: data, image size, schedule, num_classes; no pretrained weights.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/demo_shapes_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='mmpvt.PVT', arch='tiny', drop_path_rate=0.1,
                  init_cfg=None), neck=dict(in_channels=[64, 128, 320, 512]),
    roi_head=dict(bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)))

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=1, max_keep_ckpts=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
