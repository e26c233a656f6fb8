"""The ``mmpvt`` metadata stored in an exported ONNX file: everything the numpy side
(:mod:`mmpvt.deploy.onnx_infer`) needs to reproduce ``model.predict`` from the graph outputs.

Tasks: ``seg`` (the graph returns the class map), ``det`` (single-stage anchor heads: anchors,
box coder, test_cfg), ``two_stage`` (RPN anchors and test_cfg; per R-CNN stage the coder, RoI
levels and graph names; the companion graphs' file names) and ``detr`` (classes, max_per_img).
"""
from torch import nn

from .two_stage import roi_stages


def _pipeline_resize(pipeline: list) -> dict:
    resizes = [t for t in pipeline if t['type'] in ('Resize', 'mmpvt.AlignResize', 'AlignResize')]
    if len(resizes) != 1 or not resizes[0].get('keep_ratio', False) or 'scale' not in resizes[0]:
        raise ValueError(f'export needs a test pipeline with one keep-ratio Resize/AlignResize '
                         f'to a scale; got {[t["type"] for t in pipeline]}')
    t = resizes[0]
    return dict(type='align' if 'AlignResize' in t['type'] else 'resize',
                scale=list(t['scale']), size_divisor=t.get('size_divisor', 1))


def coder_meta(coder) -> dict:
    """DeltaXYWHBBoxCoder settings (wh_ratio_clip: decode()'s default, as the heads call it) or
    DistancePointBBoxCoder's (GFL)."""
    name = type(coder).__name__
    if name == 'DistancePointBBoxCoder':
        return dict(type='distance', clip_border=bool(coder.clip_border))
    if name != 'DeltaXYWHBBoxCoder' or getattr(coder, 'add_ctr_clamp', False):
        raise ValueError(f'export supports DeltaXYWHBBoxCoder without centre clamping and '
                         f'DistancePointBBoxCoder; got {name}')
    return dict(type='delta', means=list(coder.means), stds=list(coder.stds),
                clip_border=bool(coder.clip_border), wh_ratio_clip=16 / 1000)


def anchor_meta(head: nn.Module) -> dict:
    """An anchor head's AnchorGenerator (strides, per-level base anchors) and box coder."""
    generator = head.prior_generator
    if float(generator.center_offset) != 0:
        raise ValueError(f'export supports anchors with center_offset 0; got '
                         f'{generator.center_offset}')
    return dict(strides=[list(s) for s in generator.strides],
                base_anchors=[a.tolist() for a in generator.base_anchors],
                coder=coder_meta(head.bbox_coder))


def _extractor_meta(extractor: nn.Module) -> dict:
    return dict(strides=[int(s) for s in extractor.featmap_strides],
                finest_scale=float(extractor.finest_scale))


def two_stage_meta(detector: nn.Module) -> dict:
    """RPN and R-CNN settings of a Faster / Mask R-CNN (StandardRoIHead: one R-CNN stage) or a
    Cascade (Mask) R-CNN (CascadeRoIHead: one entry per stage, with its graphs' names)."""
    cfg, modules = detector.test_cfg, roi_stages(detector.roi_head)
    stages = []
    for stage in modules:
        entry = dict(coder=coder_meta(stage['bbox_head'].bbox_coder),
                     reg_class_agnostic=bool(stage['bbox_head'].reg_class_agnostic),
                     bbox_roi=_extractor_meta(stage['bbox_extractor']),
                     bbox_graph=stage['bbox_graph'])
        if 'mask_head' in stage:
            entry.update(mask_roi=_extractor_meta(stage['mask_extractor']),
                         mask_graph=stage['mask_graph'])
        stages.append(entry)
    last = modules[-1]
    rcnn = dict(num_classes=last['bbox_head'].num_classes, stages=stages,
                test_cfg=dict(score_thr=cfg.rcnn.score_thr,
                              iou_threshold=cfg.rcnn.nms.iou_threshold,
                              max_per_img=cfg.rcnn.max_per_img))
    if 'mask_head' in last:
        rcnn.update(class_agnostic_mask=bool(last['mask_head'].class_agnostic),
                    mask_thr_binary=float(cfg.rcnn.mask_thr_binary))
    return dict(rpn=dict(**anchor_meta(detector.rpn_head),
                         test_cfg=dict(nms_pre=cfg.rpn.get('nms_pre', -1),
                                       max_per_img=cfg.rpn.get('max_per_img', 1000),
                                       iou_threshold=cfg.rpn.nms.iou_threshold,
                                       min_bbox_size=cfg.rpn.get('min_bbox_size', -1))),
                rcnn=rcnn)


def deploy_meta(cfg, model: nn.Module, task: str) -> dict:
    """The test resize, normalisation, padding and classes, plus the task's post-processing
    settings (see the module docstring)."""
    pre = cfg.model.data_preprocessor
    meta = dict(task=task, resize=_pipeline_resize(cfg.test_dataloader.dataset.pipeline),
                mean=list(pre['mean']), std=list(pre['std']),
                bgr_to_rgb=bool(pre.get('bgr_to_rgb', False)),
                pad_size_divisor=int(pre.get('pad_size_divisor', 1) or 1),
                classes=list((getattr(model, 'dataset_meta', None) or {}).get('classes', [])))
    if task == 'det':
        head = model.bbox_head
        if not head.use_sigmoid_cls:
            raise ValueError(f'export supports sigmoid-classified anchor heads (RetinaNet, ATSS, '
                             f'GFL); got {type(head).__name__} with softmax scores')
        test_cfg = model.test_cfg if model.test_cfg is not None else head.test_cfg
        meta.update(
            num_classes=head.num_classes, **anchor_meta(head),
            score_factors=type(head).__name__ == 'ATSSHead',  # sigmoid(centerness) x score
            test_cfg=dict(nms_pre=test_cfg.get('nms_pre', -1),
                          score_thr=test_cfg.get('score_thr', 0.0),
                          iou_threshold=test_cfg['nms']['iou_threshold'],
                          max_per_img=test_cfg.get('max_per_img', 100),
                          min_bbox_size=test_cfg.get('min_bbox_size', -1)))
    elif task == 'two_stage':
        meta.update(two_stage_meta(model))
    elif task == 'detr':
        head = model.bbox_head
        meta.update(num_classes=head.num_classes,
                    max_per_img=int((head.test_cfg or {}).get('max_per_img', model.num_queries)))
    return meta
