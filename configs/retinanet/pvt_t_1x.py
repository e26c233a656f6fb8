# RetinaNet + PVT-Tiny, 1x schedule (paper Table 3). 8 GPUs x 2 images, AdamW lr 1e-4.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='mmpvt.PVT', arch='tiny', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_tiny.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))
# lr above is for 8 GPUs x 2 images; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Each rank draws its own random numbers (drop-path masks), as each process of the authors' runs
# did: they set no seed (docs/configs.md). seed=None: rank 0 draws a seed; each rank adds its rank.
randomness = dict(seed=None, diff_rank_seed=True)
