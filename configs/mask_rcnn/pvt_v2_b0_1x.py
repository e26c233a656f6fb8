# Mask R-CNN + PVTv2-B0, 1x schedule (authors' mask_rcnn_pvt_v2_b0_fpn_1x_coco.py; their README: 38.2 box AP / 36.2 mask AP).
# 8 GPUs x 2 images, AdamW lr 2e-4, weight decay 1e-4, no gradient clipping; single-scale
# (1333, 800) training with flip; lr steps at epochs 8 and 11 after a 500-iteration warm-up.
# The other variants inherit this file and change the backbone.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpvt.PVTv2',
        arch='b0',
        drop_path_rate=0.1,  # hard-coded for every variant in the authors' detection backbones
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b0.pth')),
    neck=dict(in_channels=[32, 64, 160, 256]))

optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4))
# lr above is for 8 GPUs x 2 images; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Each rank draws its own random numbers (drop-path masks), as each process of the authors' runs
# did: they set no seed (docs/configs.md). seed=None: rank 0 draws a seed; each rank adds its rank.
randomness = dict(seed=None, diff_rank_seed=True)
