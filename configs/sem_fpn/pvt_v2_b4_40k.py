# Semantic FPN + PVTv2-B4 on ADE20K, 40k iterations (their README: 47.9 mIoU).
_base_ = './pvt_v2_b0_40k.py'
model = dict(
    backbone=dict(
        arch='b4', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b4.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
)
