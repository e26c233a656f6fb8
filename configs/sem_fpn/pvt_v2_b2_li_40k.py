# Semantic FPN + PVTv2-B2-Li on ADE20K, 40k iterations (the authors' repository has this config (added 2021-12) but reports no result for it).
_base_ = './pvt_v2_b0_40k.py'
model = dict(
    backbone=dict(
        arch='b2_li', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2_li.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
)
