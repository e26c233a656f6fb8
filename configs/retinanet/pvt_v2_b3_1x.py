# RetinaNet + PVTv2-B3, 1x schedule (authors' README: 45.9 box AP).
_base_ = './pvt_v2_b0_1x.py'
model = dict(
    backbone=dict(
        arch='b3', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b3.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
)
