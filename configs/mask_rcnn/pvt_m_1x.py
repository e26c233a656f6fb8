# Mask R-CNN + PVT-Medium, 1x schedule (paper Table 4).
_base_ = './pvt_t_1x.py'
model = dict(
    backbone=dict(
        arch='medium',
        drop_path_rate=0.0,  # the authors' M/L detection configs use no stochastic depth
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_medium.pth')))
