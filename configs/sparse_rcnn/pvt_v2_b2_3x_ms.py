# Sparse R-CNN + PVTv2-B2, 300 proposals, multi-scale + crop, 3x (authors'
# sparse_rcnn_pvt_v2_b2_fpn_300_proposals_crop_mstrain_480-800_3x_coco.py; README: 50.1 box AP).
# mmdet's own 300-proposals crop config is the same recipe (pipeline, 36 epochs, steps 27/33,
# AdamW weight decay 1e-4, gradient clipping at norm 1, no fp16); the authors change the backbone
# and, for b2, train with 1 image per GPU (8 GPUs) and lr 2.5e-5 / 1.4.
_base_ = 'mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))

train_dataloader = dict(batch_size=1, num_workers=1)
optim_wrapper = dict(optimizer=dict(lr=2.5e-5 / 1.4))
# lr above is for 8 GPUs x 1 image; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=8)

# Each rank draws its own random numbers (drop-path masks), as each process of the authors' runs
# did: they set no seed (docs/configs.md). seed=None: rank 0 draws a seed; each rank adds its rank.
randomness = dict(seed=None, diff_rank_seed=True)
