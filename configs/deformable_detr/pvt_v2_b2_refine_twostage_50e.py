# Deformable DETR (two-stage, iterative box refinement) + PVTv2-B2 on COCO, 50 epochs: mmdet's
# own recipe (16 GPUs x 2 images, AdamW lr 2e-4, backbone lr x0.1, clipping 0.1, lr / 10 at
# epoch 40) with the ResNet-50 swapped for PVTv2-B2 from the authors' ImageNet weights.
# Stages 2-4 (strides 8, 16, 32: 128, 320, 512 channels) feed the 4-level encoder, as ResNet's
# C3-C5 do; the fourth level is ChannelMapper's stride-2 conv on stage 4.
_base_ = 'mmdet::deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', out_indices=(1, 2, 3), drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[128, 320, 512]))
