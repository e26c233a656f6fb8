# Demo: RetinaNet + PVT-T trained from scratch on the synthetic shapes (CPU): the longer run,
# `make demo ARGS=--full` (6 epochs on 300 images of 256 px, about 13 min on 2 Xeon cores).
# `make demo` trains retinanet_pvt_t_quick.py, a shorter schedule on smaller images.
# The paper's model (retinanet/pvt_t_1x.py: mmdet's RetinaNet, PVT-T backbone) composed with the
# demo data (../_base_/datasets/demo_shapes_det.py, the one place that says where the data is).
# Changes against the paper config: data, image size, schedule, num_classes; no pretrained weights.
#   python tools/generate_demo_data.py && python tools/train.py configs/demo/retinanet_pvt_t.py
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/demo_shapes_det.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='mmpvt.PVT', arch='tiny', drop_path_rate=0.1, init_cfg=None),
    neck=dict(in_channels=[64, 128, 320, 512]), bbox_head=dict(num_classes=4))

# schedule: short, with a larger lr than the paper's (from scratch, batch 8, one machine)
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
