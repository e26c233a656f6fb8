# UperNet + PVTv2-B2, Cityscapes (19 classes), 80k iterations on 512x1024 crops: mmseg's
# Cityscapes UperNet (4 GPUs x 2 images; auxiliary FCN head on stage 3) with the ResNet-50 swapped
# for PVTv2-B2 from the authors' ImageNet weights, and the optimizer of mmseg's transformer
# UperNets (./pvt_v2_b2_160k_ade20k.py: AdamW lr 6e-5, weight decay 0.01, no decay on norms,
# 1500 warm-up iterations, then poly with power 1) in place of ResNet's SGD.
_base_ = 'mmseg::upernet/upernet_r50_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    pretrained=None, backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    decode_head=dict(in_channels=[64, 128, 320, 512]), auxiliary_head=dict(in_channels=320))

optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
                     paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
max_iters = 80000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters, by_epoch=False),
]
# lr above is for 4 GPUs x 2 images; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=8)
