# Mask R-CNN + PVTv2-B2, 1x schedule (authors' README: 45.3 box AP / 41.2 mask AP).
_base_ = './pvt_v2_b0_1x.py'
model = dict(
    backbone=dict(
        arch='b2', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
)
