# Demo: Semantic FPN + PVT-T trained from scratch on the synthetic shapes' masks (CPU).
# The paper's model (sem_fpn/pvt_t_80k.py: mmseg's FPN, PVT-T backbone) composed with the demo
# data (../_base_/datasets/demo_shapes_seg.py: 0 = background is a class, no reduce_zero_label).
# Changes against the paper config: data, image size, schedule, num_classes; no pretrained weights.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    '../_base_/datasets/demo_shapes_seg.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

crop_size = {{_base_.crop_size}}
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor, pretrained=None,
    backbone=dict(_delete_=True, type='mmpvt.PVT', arch='tiny', drop_path_rate=0.1, init_cfg=None),
    neck=dict(in_channels=[64, 128, 320, 512]), decode_head=dict(num_classes=5))

max_iters = 250
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=4e-4,
                                    weight_decay=1e-4), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=50, end=max_iters, by_epoch=False),
]
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
