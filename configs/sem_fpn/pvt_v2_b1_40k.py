# Semantic FPN + PVTv2-B1 on ADE20K, 40k iterations (their README: 42.5 mIoU).
_base_ = './pvt_v2_b0_40k.py'
model = dict(
    backbone=dict(
        arch='b1', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b1.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
)
