# Semantic FPN + PVT-Medium, ADE20K, 80k iterations (paper Table 5).
_base_ = './pvt_t_80k.py'
model = dict(
    backbone=dict(
        arch='medium', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_medium.pth')))
