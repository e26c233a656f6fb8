# Mask R-CNN + PVT-Small, 1x schedule (paper Table 4).
_base_ = './pvt_t_1x.py'
model = dict(
    backbone=dict(
        arch='small', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')))
