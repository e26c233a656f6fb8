# Trans2Seg + PVT-Small on ADE20K (paper Table 7: 42.6 mIoU; 32.1M params, 31.6 GFLOPs at
# 512x512). The authors released no config; the paper trains "according to the settings of
# Sec. 5.3" for 40k iterations with single-scale testing: the Semantic FPN recipe of
# ../sem_fpn/pvt_s_80k.py (4 GPUs x 4 images, AdamW lr 1e-4, wd 1e-4, poly 0.9, random resize +
# 512x512 crop + flip + photometric distortion; test: mmpvt.AlignResize to fit (2048, 512)),
# with 40k iterations and the FPN replaced by mmpvt.Trans2SegHead (medium settings) on PVT
# stage 4 (stride 32: a 16 x 16 token grid at the 512 crop) with the stage-1 skip (stride 4).
# Sizes measured and compared with the paper in docs/trans2seg.md.
_base_ = '../sem_fpn/pvt_s_80k.py'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    neck=None,
    decode_head=dict(_delete_=True, type='mmpvt.Trans2SegHead', in_channels=(64, 512),
                     in_index=(0, 3), channels=64, embed_dims=256, depth=4, num_heads=8,
                     mlp_ratio=3, token_grid=(16, 16), num_classes=150, norm_cfg=norm_cfg,
                     align_corners=False, loss_decode=dict(type='CrossEntropyLoss',
                                                           use_sigmoid=False, loss_weight=1.0)))

max_iters = 40000
train_cfg = dict(max_iters=max_iters, val_interval=4000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
