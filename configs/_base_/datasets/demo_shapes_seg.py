# The synthetic shapes of `python tools/generate_demo_data.py` (or `make demo`) as an mmseg
# dataset: ADE20K's folder layout, 5 classes (0 = background is a class here: no
# reduce_zero_label), mIoU evaluator. A drop-in replacement for
# 'mmseg::_base_/datasets/ade20k.py' in a config's `_base_` list (docs/demo.md); set
# num_classes=5 in the decode head and data_preprocessor.size=crop_size in the model.
#
# Where the data is: $MMPVT_DEMO_DATA if set, else data/shapes (relative to the working
# directory); with or without a trailing slash. Images are 256x256 (the generator's default).
dataset_type = 'BaseSegDataset'
data_root = '{{$MMPVT_DEMO_DATA:data/shapes}}'.rstrip('/') + '/'
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle', 'star'), palette=[(0, 0, 0),
                                                                             (220, 20, 60),
                                                                             (0, 160, 60),
                                                                             (30, 80, 220),
                                                                             (250, 170, 30)])
crop_size = (256, 256)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(256, 256), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [  # the authors' test-time resize (mmpvt.AlignResize), at the demo's image size
    dict(type='LoadImageFromFile'),
    dict(type='mmpvt.AlignResize', scale=(256, 256), keep_ratio=True, size_divisor=32),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # mmseg's ADE20K test-time augmentation
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[[dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
                    [
                        dict(type='RandomFlip', prob=0., direction='horizontal'),
                        dict(type='RandomFlip', prob=1., direction='horizontal')
                    ], [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]]),
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo, img_suffix='.png',
                 seg_map_suffix='.png', reduce_zero_label=False,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training'), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False), dataset=dict(
        type=dataset_type, data_root=data_root, metainfo=metainfo, img_suffix='.png',
        seg_map_suffix='.png', reduce_zero_label=False,
        data_prefix=dict(img_path='images/validation',
                         seg_map_path='annotations/validation'), pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
