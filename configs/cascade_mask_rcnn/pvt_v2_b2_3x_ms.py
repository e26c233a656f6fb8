# Cascade Mask R-CNN + PVTv2-B2, 3x schedule, multi-scale + crop training (authors'
# cascade_mask_rcnn_pvt_v2_b2_fpn_3x_mstrain_fp16.py; their README: 51.1 box AP / 44.4 mask AP).
# 8 GPUs x 2 images, AdamW lr 1e-4, weight decay 0.05 (none on norms), 36 epochs, steps 27/33;
# the train pipeline, optimizer and schedule are in ../_base_/pvt_v2_3x_ms_crop.py.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/pvt_v2_3x_ms_crop.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

# The authors' Cascade heads: 4 shared convs + 1 fc (SyncBN), class-specific regression of
# decoded boxes with a GIoU loss (weight 10); mmdet's base has 2 fcs and smooth-L1.
cascade_bbox_heads = [
    dict(
        type='ConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1, in_channels=256,
        conv_out_channels=256, fc_out_channels=1024, roi_feat_size=7, num_classes=80,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                        target_stds=stds), reg_class_agnostic=False, reg_decoded_bbox=True,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False,
                      loss_weight=1.0), loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
    for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
]

model = dict(
    backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]), roi_head=dict(bbox_head=cascade_bbox_heads))

train_dataloader = dict(dataset=dict(pipeline={{_base_.pvt_v2_3x_ins_pipeline}}))
# Mixed precision as the authors (apex there, mmengine AMP here).
optim_wrapper = {{_base_.pvt_v2_3x_amp_optim_wrapper}}
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = {{_base_.pvt_v2_3x_param_scheduler}}
# lr above is for 8 GPUs x 2 images; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)
