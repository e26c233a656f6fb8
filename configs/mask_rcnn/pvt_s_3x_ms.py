# Mask R-CNN + PVT-Small, 3x schedule, multi-scale training (paper Table 4).
_base_ = './pvt_t_3x_ms.py'
model = dict(
    backbone=dict(
        arch='small', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')))
