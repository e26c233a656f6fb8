"""One export spec per task: the graph module(s), example inputs, input / output names, symbolic
axes and metadata that :func:`mmpvt.deploy.export.export_model` writes for a model.

:func:`plan_export` checks a built model against the support table
(:mod:`mmpvt.deploy.support`) before any file is read or written and returns the builder of its
spec; the builder runs once the weights are loaded. Tasks and their graphs:

* ``seg``: (``input``, ``size_ref``) -> ``seg_map`` (:class:`.graphs.SegmentorGraph`);
* ``det``: ``input`` -> ``cls_*``, ``reg_*`` [, ``ctr_*``] per level
  (:class:`.graphs.DenseDetectorGraph`);
* ``detr``: (``input``, ``pad_mask``) -> ``cls_score``, ``bbox_pred`` (:class:`.graphs.DETRGraph`);
* ``two_stage``: ``input`` -> ``feat_*``, ``rpn_cls_*``, ``rpn_reg_*``, plus companion RoI graphs
  (:mod:`.two_stage`);
* ``cls``: ``input`` -> ``logits`` (:class:`.graphs.ClassifierGraph`).
"""
import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from .graphs import ClassifierGraph, DenseDetectorGraph, DETRGraph, SegmentorGraph
from .meta import cls_meta, common_meta, dense_meta, detr_meta, two_stage_meta
from .support import Support, support_of, supported_names
from .two_stage import FeaturesAndProposalsGraph, RoIHeadGraph, check_supported, roi_stages

IMAGE = 'batch _ height width'  # an image input's axes (see symbolic_axes)


def symbolic_axes(**inputs: str) -> Dict[str, Dict[int, str]]:
    """The exporters' dynamic axes from one word per axis, ``_`` for a fixed size:
    ``symbolic_axes(input=IMAGE)`` -> ``{'input': {0: 'batch', 2: 'height', 3: 'width'}}``."""
    return {
        name: {
            axis: word
            for axis, word in enumerate(words.split()) if word != '_'
        }
        for name, words in inputs.items()
    }


def level_names(kinds: Sequence[str], levels: int) -> List[str]:
    """Per-level output names, kind by kind: ``cls_0 .. cls_{L-1}, reg_0 ..``."""
    return [f'{kind}_{i}' for kind in kinds for i in range(levels)]


@dataclass
class Graph:
    """One ONNX file: `module` called on `example`; `dynamic_axes` are symbolic with
    ``dynamic=True`` only, `always_dynamic` in every case (sizes the data decides)."""
    module: nn.Module
    example: Tuple[Tensor, ...]
    inputs: List[str]
    outputs: List[str]
    dynamic_axes: Dict[str, Dict[int, str]]
    always_dynamic: Dict[str, Dict[int, str]] = field(default_factory=dict)

    def axes(self, dynamic: bool) -> Dict[str, Dict[int, str]]:
        return {**self.always_dynamic, **(self.dynamic_axes if dynamic else {})}


@dataclass
class ExportSpec:
    """What one export writes: `graph` at OUT with `meta` in it, and `companions` next to it
    as ``<OUT stem>.<key>.onnx`` (their file names go into the metadata's ``graphs``)."""
    task: str
    graph: Graph
    meta: dict
    companions: Dict[str, Graph] = field(default_factory=dict)


def _size_input(x: Tensor) -> Tensor:
    """A (1, H, W) uint8 companion of the image `x` (seg: size_ref, DETR: pad_mask)."""
    return torch.zeros(1, *x.shape[-2:], dtype=torch.uint8)


def seg_spec(cfg, model: nn.Module, x: Tensor, support: Support = None) -> ExportSpec:
    graph = Graph(
        SegmentorGraph(model), (x, _size_input(x)), ['input', 'size_ref'], ['seg_map'],
        symbolic_axes(input=IMAGE, size_ref='_ ori_height ori_width'))
    return ExportSpec('seg', graph, common_meta(cfg, model, 'seg', model.decode_head.num_classes))


def dense_spec(cfg, model: nn.Module, x: Tensor, support: Support) -> ExportSpec:
    head = model.bbox_head
    levels = len(head.prior_generator.strides)
    graph = Graph(
        DenseDetectorGraph(model, distances=support.distances), (x, ), ['input'],
        level_names(('cls', 'reg', *support.extra_outputs), levels), symbolic_axes(input=IMAGE))
    meta = common_meta(cfg, model, 'det', head.num_classes)
    meta.update(dense_meta(model, score_factors='ctr' in support.extra_outputs))
    return ExportSpec('det', graph, meta)


def detr_spec(cfg, model: nn.Module, x: Tensor, support: Support) -> ExportSpec:
    graph = Graph(
        DETRGraph(model), (x, _size_input(x)), ['input', 'pad_mask'], ['cls_score', 'bbox_pred'],
        symbolic_axes(input=IMAGE, pad_mask='batch height width'))
    meta = common_meta(cfg, model, 'detr', model.bbox_head.num_classes)
    meta.update(detr_meta(model))
    return ExportSpec('detr', graph, meta)


def _roi_graph(extractor: nn.Module, head: nn.Module, key: str, outputs: List[str],
               feats: Sequence[Tensor], h: int, w: int) -> Graph:
    """A RoI graph of :mod:`.two_stage` (features and per-level RoIs -> head outputs)."""
    levels = len(extractor.featmap_strides)
    # Three boxes per level for the trace; their number is symbolic in the graph.
    rois = [
        torch.tensor([[0, 0, 0, w / 4, h / 4], [0, w / 8, h / 8, w / 2, h / 2],
                      [0, 1, 2, w - 1, h - 2]], dtype=torch.float32)
    ] * levels
    feat_names, roi_names = level_names(('feat', ), levels), level_names(('rois', ), levels)
    return Graph(
        RoIHeadGraph(extractor, head, key), (*feats[:levels], *rois), feat_names + roi_names,
        outputs, symbolic_axes(**{
            f: f'_ _ feat_h_{i} feat_w_{i}'
            for i, f in enumerate(feat_names)
        }), always_dynamic=symbolic_axes(**{
            r: f'num_rois_{i}'
            for i, r in enumerate(roi_names)
        }))


def two_stage_spec(cfg, model: nn.Module, x: Tensor, support: Support) -> ExportSpec:
    """The main graph (features + RPN) and, per R-CNN stage, a bbox and (Mask R-CNN) a mask
    RoI graph, named as :func:`.two_stage.roi_stages` names them."""
    stages = roi_stages(model.roi_head)
    heads = {}  # graph name -> (RoI extractor, head, output names)
    for stage in stages:
        heads[stage['bbox_graph']] = (stage['bbox_extractor'], stage['bbox_head'],
                                      ['cls_score', 'bbox_pred'])
        if 'mask_head' in stage:
            heads[stage['mask_graph']] = (stage['mask_extractor'], stage['mask_head'],
                                          ['mask_pred'])
    num_feats = max(len(e.featmap_strides) for e, _, _ in heads.values())
    stage1 = FeaturesAndProposalsGraph(model, num_feats)
    rpn_levels = len(model.rpn_head.prior_generator.strides)
    with torch.no_grad():
        feats = stage1(x)[:num_feats]
    h, w = x.shape[-2:]
    companions = {
        key: _roi_graph(extractor, head, key, outputs, feats, h, w)
        for key, (extractor, head, outputs) in heads.items()
    }
    graph = Graph(
        stage1, (x, ), ['input'],
        level_names(('feat', ), num_feats) + level_names(('rpn_cls', 'rpn_reg'), rpn_levels),
        symbolic_axes(input=IMAGE))
    meta = common_meta(cfg, model, 'two_stage', stages[-1]['bbox_head'].num_classes)
    meta.update(two_stage_meta(model))
    return ExportSpec('two_stage', graph, meta, companions)


def cls_spec(cfg, model: nn.Module, x: Tensor, support: Support) -> ExportSpec:
    graph = Graph(
        ClassifierGraph(model), (x, ), ['input'], ['logits'],
        symbolic_axes(input=IMAGE, logits='batch _'))
    return ExportSpec('cls', graph, cls_meta(cfg, model))


BUILDERS = dict(seg=seg_spec, det=dense_spec, detr=detr_spec, two_stage=two_stage_spec,
                cls=cls_spec)
SpecBuilder = Callable[..., ExportSpec]  # (cfg, model, example image) -> ExportSpec


@functools.lru_cache(maxsize=None)
def _detr_detectors() -> Tuple[type, ...]:
    """The DETR classes whose forward_transformer DETRGraph unrolls (mmdet's subclasses such
    as ConditionalDETR change it)."""
    from mmdet.models.detectors import DETR

    from ..models.detectors.detr import DETR as MMPVTDETR
    return DETR, MMPVTDETR


def plan_export(model: nn.Module, scope: str, where: str, dynamo: bool) -> SpecBuilder:
    """Raise ValueError (naming `where`) if `model` cannot be exported as asked; else return
    the builder of its spec, ``builder(cfg, model, x)``."""
    if scope == 'mmseg':
        return seg_spec
    if scope == 'mmpretrain':
        from mmpretrain.models import ImageClassifier
        head = getattr(model, 'head', None)
        support = support_of(head, 'cls')
        if type(model) is not ImageClassifier or support is None:
            raise ValueError(f'{where}: classifier export supports ImageClassifier with '
                             f'{"/".join(supported_names("cls"))}; got {type(model).__name__} '
                             f'with {type(head).__name__}')
        return functools.partial(cls_spec, support=support)
    from mmdet.models.detectors import TwoStageDetector
    if type(model) in _detr_detectors():
        head = model.bbox_head
        support = support_of(head, 'detr')
        if support is None or head.loss_cls.use_sigmoid:
            raise ValueError(f'{where}: DETR export supports {"/".join(supported_names("detr"))} '
                             f'with softmax scores; got {type(head).__name__}')
    elif isinstance(model, TwoStageDetector):
        check_supported(model, where)
        if dynamo:
            raise ValueError('two-stage detectors export with the TorchScript exporter only (their '
                             'RoiAlign node comes from a symbolic function); drop --dynamo')
        support = support_of(model.roi_head, 'two_stage')
    else:
        head = getattr(model, 'bbox_head', None)
        support = support_of(head, 'det')
        if support is None:
            raise ValueError(f'{where}: ONNX export covers RetinaNet, ATSS, GFL, Faster/Mask/'
                             f'Cascade R-CNN, DETR and Semantic FPN; {type(model).__name__} with '
                             f'{type(head).__name__} is not supported')
    return functools.partial(BUILDERS[support.task], support=support)
