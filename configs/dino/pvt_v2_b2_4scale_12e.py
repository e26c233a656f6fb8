# DINO-4scale + PVTv2-B2 on COCO, 12 epochs: mmdet's own recipe (8 GPUs x 2 images, AdamW lr
# 1e-4, backbone lr x0.1, clipping 0.1, lr / 10 at epoch 11) with the ResNet-50 swapped for
# PVTv2-B2 from the authors' ImageNet weights. Stages 2-4 (strides 8, 16, 32: 128, 320, 512
# channels) feed the 4 scales, as ResNet's C3-C5 do; the fourth is ChannelMapper's stride-2 conv.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', out_indices=(1, 2, 3), drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[128, 320, 512]))
