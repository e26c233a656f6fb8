# RetinaNet + PVT-Large, 3x schedule, multi-scale training (paper Table 3).
_base_ = './pvt_t_3x_ms.py'
model = dict(
    backbone=dict(
        arch='large',
        drop_path_rate=0.0,  # the authors' M/L detection configs use no stochastic depth
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_large.pth')))
# fp32, as its base: the authors released no 3x config of PVT v1 (the paper's text gives the
# schedule), so the mixed precision of their 1x PVT-L config (pvt_l_1x.py) is not assumed here.
