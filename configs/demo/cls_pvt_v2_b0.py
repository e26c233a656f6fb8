# Demo: a PVTv2-B0 classifier trained from scratch on the synthetic shapes' crops (CPU, a few
# minutes): which shape is it, circle, square, triangle or star?
#   python tools/demo.py --config configs/demo/cls_pvt_v2_b0.py
# The ImageNet model (imagenet/pvt_v2_b0_300e.py: PVTv2-B0, average pooling, linear head) with the
# demo data (../_base_/datasets/demo_shapes_cls.py, 64 px crops). Changes against the ImageNet
# recipe: 4 classes, a 10-epoch schedule with a short warm-up, batch 32, fp32 (AMP needs a GPU),
# no Mixup/CutMix/RandAugment/RandomErasing/repeated augmentation (on 734 small crops they slow
# learning more than they regularise). retinanet_pvt_v2_b0_from_cls.py starts a detector from
# this classifier's backbone.
_base_ = [
    '../_base_/datasets/demo_shapes_cls.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier', data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='mmpvt.PVTv2', arch='b0', out_indices=(3, ), drop_path_rate=0.1,
                  init_cfg=None), neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=4, in_channels=256,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
              init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0)))

max_epochs = 10
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.dwconv.bias': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs),
]
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=1, max_keep_ckpts=1))
randomness = dict(seed=0)
