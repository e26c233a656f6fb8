# Semantic FPN + PVTv2-B0 on ADE20K, 40k iterations (authors' whai362/PVTv2-Seg
# fpn_pvtv2_b0_ade20k_40k.py, mmseg 0.13; their README: 37.2 mIoU).
# 8 GPUs x 4 images (the authors' comment: 8 GPUs instead of mmseg's 4, hence lr x2 and iters / 2),
# AdamW lr 2e-4, weight decay 1e-4, poly decay (power 0.9, to 0), no warm-up; random resize
# (ratio 0.5-2.0 of (2048, 512)) + 512x512 crop + flip + photometric distortion (mmseg's ADE20K
# base). Test: rescale to fit (2048, 512), then resize each side up to a multiple of 32
# (mmpvt.AlignResize, the authors' test-time resize).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpvt.PVTv2',
        arch='b0',
        drop_path_rate=0.1,  # hard-coded in the authors' segmentation backbones
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b0.pth')),
    neck=dict(in_channels=[32, 64, 160, 256]),
    decode_head=dict(num_classes=150))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='mmpvt.AlignResize', scale=(2048, 512), keep_ratio=True, size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=4)
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4), clip_grad=None)
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40000, by_epoch=False)]
# lr above is for 8 GPUs x 4 images; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=32)

# Each rank draws its own random numbers (drop-path masks), as each process of the authors' runs
# did: they set no seed (docs/configs.md). seed=None: rank 0 draws a seed; each rank adds its rank.
randomness = dict(seed=None, diff_rank_seed=True)
