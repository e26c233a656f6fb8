# The synthetic shapes of `python tools/generate_demo_data.py` (or `make demo`) as an mmpretrain
# dataset: one square crop around each shape (<root>/crops), labelled with its class (4 classes,
# one per shape type), Accuracy evaluator. A drop-in replacement for
# 'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py' in a config's `_base_` list
# (docs/demo.md); set num_classes=4 in the head and the data preprocessor.
#
# Where the data is: $MMPVT_DEMO_DATA if set, else data/shapes (relative to the working
# directory); with or without a trailing slash. Crops are 20..140 px; the pipelines resize them
# to `img_size`.
dataset_type = 'CustomDataset'
data_root = '{{$MMPVT_DEMO_DATA:data/shapes}}'.rstrip('/') + '/'
metainfo = dict(classes=('circle', 'square', 'triangle', 'star'))
img_size = 64

data_preprocessor = dict(type='ClsDataPreprocessor', num_classes=4, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.6, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size)),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='crops/training.txt', data_prefix='crops', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='crops/validation.txt', data_prefix='crops', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
