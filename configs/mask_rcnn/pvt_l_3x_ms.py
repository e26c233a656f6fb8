# Mask R-CNN + PVT-Large, 3x schedule, multi-scale training (paper Table 4).
# The authors released no v1 3x config: this one keeps the paper's 8 GPUs x 2 images and the
# released Mask R-CNN lr 2e-4 (their 1x PVT-L config's 1 image per GPU is not carried over).
_base_ = './pvt_t_3x_ms.py'
model = dict(
    backbone=dict(
        arch='large',
        drop_path_rate=0.0,  # the authors' M/L detection configs use no stochastic depth
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_large.pth')))
