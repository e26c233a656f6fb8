# Semantic FPN + PVTv2-B2, Cityscapes (19 classes), 80k iterations on 512x1024 crops: mmseg's
# Cityscapes Semantic FPN (4 GPUs x 2 images) with the ResNet-50 swapped for PVTv2-B2 from the
# authors' ImageNet weights, and the optimizer of the authors' Semantic FPN recipe
# (./pvt_v2_b2_40k.py: AdamW, weight decay 1e-4, poly with power 0.9) in place of SGD, its lr
# per image kept (2e-4 for 32 images there, as 1e-4 for 16 in the paper's 80k: 5e-5 for 8).
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    pretrained=None, backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=5e-5, weight_decay=1e-4))
max_iters = 80000
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False),
]
# lr above is for 4 GPUs x 2 images; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=8)
