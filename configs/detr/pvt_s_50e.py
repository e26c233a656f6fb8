# DETR + PVT-Small (paper Table 6, 34.7 AP vs 32.3 for R50): only PVT's last stage (512
# channels) feeds the transformer; 50 epochs, lr 1e-4 divided by 10 at epoch 33, backbone lr x0.1,
# gradient clipping 0.1, random flip + multi-scale training (mmdet's DETR pipeline).
_base_ = 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpvt.PVT',
        arch='small',
        out_indices=(3, ),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')),
    neck=dict(in_channels=[512]))

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[33], gamma=0.1)
]
# optimizer (inherited): AdamW lr 1e-4, weight decay 1e-4, clip_grad 0.1, backbone lr_mult 0.1.
auto_scale_lr = dict(base_batch_size=16)
