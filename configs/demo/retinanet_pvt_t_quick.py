# Demo: the `make demo` run, RetinaNet + PVT-T trained from scratch on the synthetic shapes in a
# few minutes of CPU (about 4.5 min on 2 Xeon cores). retinanet_pvt_t.py (the longer run,
# `make demo ARGS=--full`) with
#   - the images resized to 160 px (256 px there), batch 4 (8), 5 epochs (6): less compute, more
#     optimizer steps;
#   - GroupNorm in the FPN neck and the RetinaNet head (none there): a detector trained from
#     scratch learns much faster with normalised convs (docs/demo.md has the measurements);
#   - a fixed random seed, so that a run on the same machine gives the same numbers.
# Same data (../_base_/datasets/demo_shapes_det.py), same backbone, neck and head shapes.
_base_ = './retinanet_pvt_t.py'

norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(neck=dict(norm_cfg=norm_cfg), bbox_head=dict(norm_cfg=norm_cfg))

img_scale = (160, 160)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 5
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
randomness = dict(seed=0)
auto_scale_lr = dict(base_batch_size=4)
