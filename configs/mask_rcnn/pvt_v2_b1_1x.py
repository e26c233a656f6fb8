# Mask R-CNN + PVTv2-B1, 1x schedule (authors' README: 41.8 box AP / 38.8 mask AP).
_base_ = './pvt_v2_b0_1x.py'
model = dict(
    backbone=dict(
        arch='b1', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b1.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
)
