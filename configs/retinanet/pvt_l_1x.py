# RetinaNet + PVT-Large, 1x schedule (paper Table 3).
_base_ = './pvt_t_1x.py'
model = dict(
    backbone=dict(
        arch='large',
        drop_path_rate=0.0,  # the authors' M/L detection configs use no stochastic depth
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_large.pth')))
# The authors trained this one in mixed precision (their retinanet_pvt_l_fpn_1x_coco.py: apex,
# EpochBasedRunnerAmp with DistOptimizerHook(use_fp16=True)); mmengine's AMP with a dynamic loss
# scale is the 2.x equivalent. Their PVT-T/S/M RetinaNets and every Mask R-CNN train in fp32.
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
