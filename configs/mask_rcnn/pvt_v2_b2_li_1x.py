# Mask R-CNN + PVTv2-B2-Li, 1x schedule (authors' README: 44.1 box AP / 40.5 mask AP).
# The authors' README links the b3 config for this row (sic); the b2_li config in their repository is
# this one.
_base_ = './pvt_v2_b0_1x.py'
model = dict(
    backbone=dict(
        arch='b2_li', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2_li.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
)
