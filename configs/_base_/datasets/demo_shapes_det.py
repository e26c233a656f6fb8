# The synthetic shapes of `python tools/generate_demo_data.py` (or `make demo`) as an mmdet
# dataset: 4 classes, COCO boxes, COCO evaluator. A drop-in replacement for
# 'mmdet::_base_/datasets/coco_detection.py' in a config's `_base_` list (docs/demo.md):
#
#   _base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py',
#             '<mmpvt>/configs/_base_/datasets/demo_shapes_det.py',
#             'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']
#   model = dict(bbox_head=dict(num_classes=4))   # the model's head is yours to set
#
# Where the data is: $MMPVT_DEMO_DATA if set, else data/shapes (relative to the working
# directory); with or without a trailing slash. Images are 256x256 (the generator's default).
dataset_type = 'CocoDataset'
data_root = '{{$MMPVT_DEMO_DATA:data/shapes}}'.rstrip('/') + '/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star'), palette=[(220, 20, 60), (0, 160, 60),
                                                               (30, 80, 220), (250, 170, 30)])
img_scale = (256, 256)
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler',
                 shuffle=True), batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_training.json',
                 data_prefix=dict(img='images/training/'),
                 filter_cfg=dict(filter_empty_gt=True,
                                 min_size=32), pipeline=train_pipeline, backend_args=backend_args))
val_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_validation.json',
                 data_prefix=dict(img='images/validation/'), test_mode=True, pipeline=test_pipeline,
                 backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='CocoMetric',
                     ann_file=data_root + 'annotations/instances_validation.json', metric='bbox',
                     format_only=False, backend_args=backend_args)
test_evaluator = val_evaluator
