# The PVTv2 authors' 3x multi-scale recipe (whai362/PVT v2 detection/configs, mmdet 2.13), shared by
# the Mask R-CNN 3x, Cascade Mask R-CNN, ATSS and GFL configs. Keys are prefixed `pvt_v2_3x_` so
# that this file can sit beside an mmdet base as a second `_base_` (mmengine forbids duplicate keys
# among bases) and be read as `{{_base_.pvt_v2_3x_...}}`.

# RandomFlip 0.5, then one of two policies (the authors' AutoAugment; mmdet 3.x's RandomChoice):
# (a) short side in {480, 512, ..., 800}, long side <= 1333;
# (b) short side in {400, 500, 600} -> random crop of 384-600 px -> short side in {480, ..., 800}.
_ms_scales = [(1333, s) for s in range(480, 801, 32)]
_ms_crop_policies = [
    [dict(type='RandomChoiceResize', scales=_ms_scales, keep_ratio=True)],
    [
        dict(type='RandomChoiceResize', scales=[(1333, 400), (1333, 500), (1333, 600)],
             keep_ratio=True),
        dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
             allow_negative_crop=True),
        dict(type='RandomChoiceResize', scales=_ms_scales, keep_ratio=True),
    ],
]
pvt_v2_3x_det_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=_ms_crop_policies),
    dict(type='PackDetInputs'),
]
pvt_v2_3x_ins_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=_ms_crop_policies),
    dict(type='PackDetInputs'),
]

# AdamW lr 1e-4 (8 GPUs x 2 images), weight decay 0.05, none on any parameter whose name contains
# 'norm' (mmengine's custom_keys match substrings, as mmcv's did); no gradient clipping.
# `_delete_`: it replaces the SGD wrapper of mmdet's schedule base when used as `optim_wrapper`.
pvt_v2_3x_optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                                                       weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
        }), clip_grad=None)
# The authors trained these with apex mixed precision; mmengine's AMP is the 2.x equivalent.
pvt_v2_3x_amp_optim_wrapper = dict(pvt_v2_3x_optim_wrapper, type='AmpOptimWrapper',
                                   loss_scale='dynamic')
pvt_v2_3x_max_epochs = 36
pvt_v2_3x_param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]

# Each rank draws its own random numbers (drop-path masks), as each process of the authors' runs
# did: they set no seed (docs/configs.md). seed=None: rank 0 draws a seed; each rank adds its rank.
randomness = dict(seed=None, diff_rank_seed=True)
