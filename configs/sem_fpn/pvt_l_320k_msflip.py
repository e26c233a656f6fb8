# PVT-L* of paper Table 5: Semantic FPN + PVT-Large trained 320k iterations, evaluated with
# multi-scale + flip test-time augmentation (44.8 mIoU in the paper):
#   python tools/test.py configs/sem_fpn/pvt_l_320k_msflip.py CHECKPOINT --tta
# The authors' multi-scale test (mmseg 0.13 MultiScaleFlipAug, img_scale (2048, 512), ratios
# 0.5-1.75) scales the (2048, 512) *target* by each ratio and then aligns with AlignResize.
# mmseg 1.x's ADE20K `tta_pipeline` instead multiplies the *image* size by the ratio
# (Resize(scale_factor=r)) and does not align, so we replace it. `tta_model` (SegTTAModel, which
# averages the softmax over the 12 views) comes from mmseg's runtime base.
_base_ = './pvt_l_80k.py'

max_iters = 320000
train_cfg = dict(max_iters=max_iters, val_interval=32000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=32000))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]

# (2048, 512) x (0.5, 0.75, 1.0, 1.25, 1.5, 1.75), as mmseg 0.13 computed it: int(side * ratio).
tta_scales = [(1024, 256), (1536, 384), (2048, 512), (2560, 640), (3072, 768), (3584, 896)]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug', transforms=[
            [
                dict(type='mmpvt.AlignResize', scale=s, keep_ratio=True, size_divisor=32)
                for s in tta_scales
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ])
]
