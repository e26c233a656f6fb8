"""The ``mmpvt`` metadata stored in an exported ONNX file: everything the numpy side
(:mod:`mmpvt_runtime`) needs to reproduce ``model.predict`` from the graph outputs, and to draw
the predictions as the inferencers do.

Every task: ``task``, the test ``resize``, ``mean``, ``std``, ``bgr_to_rgb``,
``pad_size_divisor``, ``classes`` and ``palette`` (:func:`common_meta`). Then per task: ``det``
(single-stage anchor heads: anchors, box coder, test_cfg; :func:`dense_meta`), ``two_stage``
(RPN anchors and test_cfg; per R-CNN stage the coder, RoI levels and graph names;
:func:`two_stage_meta`; the companion graphs' file names are added by the export), ``detr``
(max_per_img; :func:`detr_meta`) and ``seg`` (nothing more: the graph returns the class map).
Classifiers (``cls``, :func:`cls_meta`) have a test pipeline of their own (an edge resize and a
centre crop instead of a keep-ratio resize and padding).
"""
import functools
from typing import List, Optional

from torch import nn

from .two_stage import roi_stages


def _pipeline_resize(pipeline: list) -> dict:
    resizes = [t for t in pipeline if t['type'] in ('Resize', 'mmpvt.AlignResize', 'AlignResize')]
    if len(resizes) != 1 or not resizes[0].get('keep_ratio', False) or 'scale' not in resizes[0]:
        raise ValueError(f'export needs a test pipeline with one keep-ratio Resize/AlignResize '
                         f'to a scale; got {[t["type"] for t in pipeline]}')
    t = resizes[0]
    return dict(type='align' if 'AlignResize' in t['type'] else 'resize', scale=list(t['scale']),
                size_divisor=t.get('size_divisor', 1))


def _test_dataset_palette(cfg):
    """The palette of the config's test dataset (its class default, overridden by the config's
    metainfo), built without reading annotations, as DetInferencer reads it; None if it has none."""
    from mmengine.registry import DATASETS
    dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, lazy_init=True))
    return dataset.metainfo.get('palette')


def _palette(cfg, dataset_meta: dict, num_classes: int) -> list:
    """RGB triples per class, from the source tools/image_demo.py draws with: for detectors
    DetInferencer's order (test dataset, then checkpoint, then mmdet's seeded random palette,
    resolved with mmdet's get_palette, which also expands names such as 'coco'); for segmentors
    the checkpoint's (or config's) palette, else the test dataset's (mmseg datasets fill one in
    for their classes)."""
    if cfg.default_scope == 'mmseg':
        palette = dataset_meta.get('palette') or _test_dataset_palette(cfg) or []
    else:
        from mmdet.visualization import get_palette
        palette = get_palette(
            _test_dataset_palette(cfg) or dataset_meta.get('palette') or 'random', num_classes)
    return [[int(v) for v in colour] for colour in palette]


def common_meta(cfg, model: nn.Module, task: str, num_classes: int) -> dict:
    """The test resize, normalisation, padding, classes and palette."""
    pre = cfg.model.data_preprocessor
    dataset_meta = getattr(model, 'dataset_meta', None) or {}
    return dict(task=task, resize=_pipeline_resize(cfg.test_dataloader.dataset.pipeline),
                mean=list(pre['mean']), std=list(pre['std']),
                bgr_to_rgb=bool(pre.get('bgr_to_rgb', False)),
                pad_size_divisor=int(pre.get('pad_size_divisor', 1)
                                     or 1), classes=list(dataset_meta.get('classes', [])),
                palette=_palette(cfg, dataset_meta, num_classes))


def _delta_coder(coder) -> dict:
    # wh_ratio_clip: decode()'s default, as the heads call it
    return dict(type='delta', means=list(coder.means), stds=list(coder.stds),
                clip_border=bool(coder.clip_border), wh_ratio_clip=16 / 1000)


@functools.lru_cache(maxsize=None)
def _coders() -> dict:
    """{exact coder class: its metadata}; the runtime's ``boxes.DECODERS`` has one entry each."""
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder, DistancePointBBoxCoder
    return {
        DeltaXYWHBBoxCoder: _delta_coder,
        DistancePointBBoxCoder: lambda c: dict(type='distance', clip_border=bool(c.clip_border))
    }


def coder_meta(coder) -> dict:
    """DeltaXYWHBBoxCoder settings or DistancePointBBoxCoder's (GFL)."""
    to_meta = _coders().get(type(coder))
    if to_meta is None or getattr(coder, 'add_ctr_clamp', False):
        raise ValueError(f'export supports DeltaXYWHBBoxCoder without centre clamping and '
                         f'DistancePointBBoxCoder; got {type(coder).__name__}')
    return to_meta(coder)


def anchor_meta(head: nn.Module) -> dict:
    """An anchor head's AnchorGenerator (strides, per-level base anchors) and box coder."""
    generator = head.prior_generator
    if float(generator.center_offset) != 0:
        raise ValueError(f'export supports anchors with center_offset 0; got '
                         f'{generator.center_offset}')
    return dict(strides=[list(s) for s in generator.strides],
                base_anchors=[a.tolist() for a in generator.base_anchors],
                coder=coder_meta(head.bbox_coder))


def dense_meta(model: nn.Module, score_factors: bool) -> dict:
    """A single-stage detector's anchors, coder and test_cfg; `score_factors`: the scores are
    multiplied by sigmoid of the ``ctr_*`` outputs (ATSS)."""
    head = model.bbox_head
    if not head.use_sigmoid_cls:
        raise ValueError(f'export supports sigmoid-classified anchor heads (RetinaNet, ATSS, '
                         f'GFL); got {type(head).__name__} with softmax scores')
    test_cfg = model.test_cfg if model.test_cfg is not None else head.test_cfg
    return dict(
        num_classes=head.num_classes, **anchor_meta(head), score_factors=score_factors,
        test_cfg=dict(
            nms_pre=test_cfg.get('nms_pre', -1), score_thr=test_cfg.get('score_thr', 0.0),
            iou_threshold=test_cfg['nms']['iou_threshold'],
            max_per_img=test_cfg.get('max_per_img',
                                     100), min_bbox_size=test_cfg.get('min_bbox_size', -1)))


def _extractor_meta(extractor: nn.Module) -> dict:
    return dict(strides=[int(s) for s in extractor.featmap_strides],
                finest_scale=float(extractor.finest_scale))


def two_stage_meta(detector: nn.Module) -> dict:
    """RPN and R-CNN settings of a Faster / Mask R-CNN (StandardRoIHead: one R-CNN stage) or a
    Cascade (Mask) R-CNN (CascadeRoIHead: one entry per stage, with its graphs' names)."""
    cfg, modules = detector.test_cfg, roi_stages(detector.roi_head)
    stages = []
    for stage in modules:
        entry = dict(
            coder=coder_meta(stage['bbox_head'].bbox_coder),
            reg_class_agnostic=bool(stage['bbox_head'].reg_class_agnostic),
            bbox_roi=_extractor_meta(stage['bbox_extractor']), bbox_graph=stage['bbox_graph'])
        if 'mask_head' in stage:
            entry.update(
                mask_roi=_extractor_meta(stage['mask_extractor']), mask_graph=stage['mask_graph'])
        stages.append(entry)
    last = modules[-1]
    rcnn = dict(
        num_classes=last['bbox_head'].num_classes, stages=stages,
        test_cfg=dict(score_thr=cfg.rcnn.score_thr, iou_threshold=cfg.rcnn.nms.iou_threshold,
                      max_per_img=cfg.rcnn.max_per_img))
    if 'mask_head' in last:
        rcnn.update(
            class_agnostic_mask=bool(last['mask_head'].class_agnostic),
            mask_thr_binary=float(cfg.rcnn.mask_thr_binary))
    return dict(
        rpn=dict(
            **anchor_meta(detector.rpn_head), test_cfg=dict(
                nms_pre=cfg.rpn.get('nms_pre', -1), max_per_img=cfg.rpn.get('max_per_img', 1000),
                iou_threshold=cfg.rpn.nms.iou_threshold,
                min_bbox_size=cfg.rpn.get('min_bbox_size', -1))), rcnn=rcnn)


def detr_meta(model: nn.Module) -> dict:
    """DETR's class count and how many queries to keep."""
    head = model.bbox_head
    return dict(num_classes=head.num_classes, max_per_img=int(
        (head.test_cfg or {}).get('max_per_img', model.num_queries)))


def _cls_pipeline(pipeline: list) -> dict:
    """mmpretrain's test pipeline as the runtime replays it: ``ResizeEdge`` (or a fixed-size
    ``Resize``), then an optional ``CenterCrop``; anything else is refused."""
    steps = [t for t in pipeline if t['type'] not in ('LoadImageFromFile', 'PackInputs')]
    kinds = [t['type'] for t in steps]
    if kinds not in (['ResizeEdge', 'CenterCrop'], ['ResizeEdge'], ['Resize', 'CenterCrop'],
                     ['Resize']) or (kinds[0] == 'Resize' and steps[0].get('keep_ratio')):
        raise ValueError(f'classifier export needs a test pipeline of ResizeEdge or a fixed-size '
                         f'Resize, then at most a CenterCrop; got {kinds}')
    resize = steps[0]
    meta = dict(
        resize=dict(
            interpolation=resize.get('interpolation', 'bilinear'),
            backend=resize.get('backend', 'cv2')), crop=None)
    if resize['type'] == 'ResizeEdge':
        meta['resize'].update(type='resize_edge', scale=int(resize['scale']),
                              edge=resize.get('edge', 'short'))
    else:
        scale = resize['scale']
        w, h = (scale, scale) if isinstance(scale, int) else scale  # mmcv's scale is (w, h)
        meta['resize'].update(type='resize', scale=[h, w])
    if len(steps) == 2:
        crop = steps[1]['crop_size']
        meta['crop'] = [crop, crop] if isinstance(crop, int) else [crop[1], crop[0]]  # (h, w)
    return meta


def classifier_classes(cfg, dataset_meta: Optional[dict]) -> List[str]:
    """A classifier's class names as mmpretrain's get_model finds them: `dataset_meta` (the
    checkpoint's), else the test dataset's metainfo in the config, else its dataset class's
    METAINFO (ImageNet's 1000 names for our ImageNet configs); [] if none names them."""
    if (dataset_meta or {}).get('classes'):
        return list(dataset_meta['classes'])
    dataset = cfg.test_dataloader.dataset
    if (dataset.get('metainfo') or {}).get('classes'):
        return list(dataset.metainfo['classes'])
    from mmpretrain.registry import DATASETS  # classifiers only
    return list(getattr(DATASETS.get(dataset.type), 'METAINFO', {}).get('classes', []))


def cls_meta(cfg, model: nn.Module) -> dict:
    """A classifier's test pipeline (resize and crop), normalisation and classes."""
    pre = cfg.model.data_preprocessor
    return dict(task='cls', **_cls_pipeline(cfg.test_dataloader.dataset.pipeline),
                mean=list(pre['mean']), std=list(pre['std']),
                bgr_to_rgb=bool(pre.get('to_rgb', False)), pad_size_divisor=1,
                classes=classifier_classes(cfg, getattr(model, 'dataset_meta', None)), palette=[],
                num_classes=int(model.head.num_classes))
