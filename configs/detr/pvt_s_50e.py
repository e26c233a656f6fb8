# DETR + PVT-Small (paper Table 6, 34.7 AP vs 32.3 for R50): only PVT's last stage (512
# channels) feeds the transformer; 50 epochs, lr 1e-4 divided by 10 at epoch 33, backbone lr x0.1,
# gradient clipping 0.1, 8 GPUs x 2 images (the authors' detr_pvt_s_8x2_50ep_coco.py).
#
# The paper says only "random flip + multi-scale". mmdet's DETR base (which we inherit for the
# model) trains with its 150-epoch recipe: short side 480-800 OR resize -> random crop -> resize.
# We follow the authors' released config instead: short side drawn from {640, 672, ..., 800}
# (long side <= 1333), flip, no crop, images padded to a multiple of 32 (train and test; mmdet's
# DETR base pads to 1).
_base_ = 'mmdet::detr/detr_r50_8xb2-150e_coco.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

# mmpvt.DETR = mmdet's DETR that also reads mmdet 2.x DETR checkpoints (the authors' release).
model = dict(
    type='mmpvt.DETR', data_preprocessor=dict(pad_size_divisor=32), backbone=dict(
        _delete_=True, type='mmpvt.PVT', arch='small', out_indices=(3, ), drop_path_rate=0.1,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')),
    neck=dict(in_channels=[512]))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                                            (1333, 768), (1333, 800)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[33], gamma=0.1)
]
# optimizer (inherited): AdamW lr 1e-4, weight decay 1e-4, clip_grad 0.1, backbone lr_mult 0.1.
auto_scale_lr = dict(base_batch_size=16)

# Each rank draws its own random numbers (drop-path masks), as each process of the authors' runs
# did: they set no seed (docs/configs.md). seed=None: rank 0 draws a seed; each rank adds its rank.
randomness = dict(seed=None, diff_rank_seed=True)
