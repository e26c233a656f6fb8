# Mask R-CNN + PVTv2-B2, 3x schedule, multi-scale + crop training (authors'
# mask_rcnn_pvt_v2_b2_fpn_3x_mstrain.py; their README: 47.8 box AP / 43.1 mask AP).
# 8 GPUs x 2 images, AdamW lr 1e-4, weight decay 0.05 (none on norms), 36 epochs, steps 27/33;
# the train pipeline, optimizer and schedule are in ../_base_/pvt_v2_3x_ms_crop.py.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/pvt_v2_3x_ms_crop.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))

train_dataloader = dict(dataset=dict(pipeline={{_base_.pvt_v2_3x_ins_pipeline}}))
# Trained in fp32: unlike the other 3x configs (and its b2_li twin), the authors' b2 Mask R-CNN 3x
# config does not use fp16.
optim_wrapper = {{_base_.pvt_v2_3x_optim_wrapper}}
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = {{_base_.pvt_v2_3x_param_scheduler}}
# lr above is for 8 GPUs x 2 images; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)
