# PVT-L* of paper Table 5: Semantic FPN + PVT-Large trained 320k iterations, evaluated with
# multi-scale (ratios 0.5-1.75) + flip test-time augmentation (44.8 mIoU in the paper):
#   python tools/test.py configs/sem_fpn/pvt_l_320k_msflip.py CHECKPOINT --tta
# `tta_pipeline` (ratios 0.5, 0.75, ..., 1.75, with and without flip) and `tta_model`
# (SegTTAModel) come from mmseg's ADE20K and runtime bases.
_base_ = './pvt_l_80k.py'

max_iters = 320000
train_cfg = dict(max_iters=max_iters, val_interval=32000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=32000))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
