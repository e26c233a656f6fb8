"""Two-stage detectors (Faster / Mask R-CNN with mmdet's ``StandardRoIHead``; Cascade (Mask) R-CNN
with ``CascadeRoIHead``) as ONNX graphs.

Where the graphs end, and why: the proposals and the final detections come out of greedy NMS,
whose output count depends on the data, and mmdet's RoI heads route each box to one pyramid level
by its size. Keeping NMS (and box decoding) in numpy, as for RetinaNet, splits the model in three:

1. ``OUT.onnx``: ``input`` (B, 3, H, W) -> ``feat_0..feat_{L-1}`` (the FPN levels the RoI
   extractors read) and the RPN's raw ``rpn_cls_*`` / ``rpn_reg_*`` per level;
2. ``OUT.roi_bbox.onnx``: (``feat_*``, ``rois_0..rois_{L-1}``: (n_l, 5) boxes assigned to level
   l, any n_l including 0) -> ``cls_score`` (n, K+1), ``bbox_pred`` (n, 4K), rows level by level;
3. ``OUT.roi_mask.onnx`` (Mask R-CNN): the same inputs -> ``mask_pred`` (n, K, 28, 28) logits.

Cascade R-CNN has graphs 2 and 3 once per stage (``OUT.roi_bbox_0.onnx`` ...); numpy refines the
boxes between stages (``regress_by_class`` with each RoI's best class), averages the stages'
class logits and their mask probabilities, as ``CascadeRoIHead.predict`` does.

RoI Align is ONNX's ``RoiAlign`` (opset >= 16, ``coordinate_transformation_mode='half_pixel'``),
which computes what mmcv's ``RoIAlign(aligned=True, pool_mode='avg')`` computes: the same sample
points, adaptive sampling grid and average. (mmcv's own ONNX symbolic cannot be used: at
opset 17 onnxruntime rejects the graph it writes, a Squeeze with an ``axes`` attribute, which
opset 13 removed; and it subtracts the half pixel by hand, for opset 10's RoiAlign, which had no
coordinate mode.)
The numpy side (:mod:`mmpvt_runtime.two_stage`) does the RPN's top-k, decoding and NMS, the
level assignment, the R-CNN decoding and class-wise NMS, and pastes the masks into the image.
"""
import functools
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from .support import support_of, supported_names


@functools.lru_cache(maxsize=None)
def supported_parts() -> Dict[str, Tuple[type, ...]]:
    """The exact classes the graphs can hold besides the roi_head (whose classes are in
    :func:`mmpvt.deploy.support.support_table`), by the part's name in error messages."""
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    return dict(rpn_head=(RPNHead, ), extractor=(SingleRoIExtractor, ), mask_head=(FCNMaskHead, ))


class RoIAlignFunction(torch.autograd.Function):
    """mmcv's ``roi_align(..., pool_mode='avg', aligned=True)`` in eager mode; ONNX ``RoiAlign``
    with half-pixel coordinates when exported (TorchScript exporter)."""

    @staticmethod
    def forward(ctx, feat: Tensor, rois: Tensor, out_size: Tuple[int, int], scale: float,
                sampling_ratio: int) -> Tensor:
        from mmcv.ops import roi_align
        return roi_align(feat, rois, out_size, scale, sampling_ratio, 'avg', True)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        # An export-only stand-in: the graphs it runs in are traced, never trained.
        raise RuntimeError('RoIAlignFunction is the ONNX export form of mmcv RoIAlign and has no '
                           'backward; train with the detector itself (its mmcv.ops.RoIAlign)')

    @staticmethod
    def symbolic(g, feat, rois, out_size, scale, sampling_ratio):

        def columns(*idx):
            return g.op('Gather', rois, g.op('Constant', value_t=torch.tensor(idx)), axis_i=1)

        batch = g.op('Cast', g.op('Squeeze', columns(0),
                                  g.op('Constant', value_t=torch.tensor([1]))), to_i=7)  # INT64
        return g.op('RoiAlign', feat, columns(1, 2, 3, 4), batch, output_height_i=out_size[0],
                    output_width_i=out_size[1], spatial_scale_f=scale,
                    sampling_ratio_i=max(0, sampling_ratio), mode_s='avg',
                    coordinate_transformation_mode_s='half_pixel')


def _roi_layer_args(extractor: nn.Module, where: str) -> List[tuple]:
    from mmcv.ops import RoIAlign
    args = []
    for layer in extractor.roi_layers:
        if type(layer) is not RoIAlign or not layer.aligned or layer.pool_mode != 'avg':
            raise ValueError(f'{where}: export supports mmcv RoIAlign(aligned=True, '
                             f"pool_mode='avg'); got {layer!r}")
        size = layer.output_size
        args.append((tuple(size) if isinstance(size, (tuple, list)) else
                     (size, size), float(layer.spatial_scale), int(layer.sampling_ratio)))
    return args


class FeaturesAndProposalsGraph(nn.Module):
    """Stage 1: ``input`` -> (``feat_0..feat_{L-1}``, ``rpn_cls_*``, ``rpn_reg_*``)."""

    def __init__(self, detector: nn.Module, num_feats: int) -> None:
        super().__init__()
        self.detector, self.num_feats = detector, num_feats

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        feats = self.detector.extract_feat(x)
        cls_scores, bbox_preds = self.detector.rpn_head(feats)
        return (*feats[:self.num_feats], *cls_scores, *bbox_preds)


class RoIHeadGraph(nn.Module):
    """Stage 2/3: mmdet's ``SingleRoIExtractor`` with the RoIs already sorted by level (level l's
    RoIs pooled from ``feat_l``, concatenated in level order) followed by a bbox or mask head."""

    def __init__(self, extractor: nn.Module, head: nn.Module, where: str) -> None:
        super().__init__()
        if getattr(extractor, 'gc_context', False):  # not in StandardRoIHead's extractors we ship
            raise ValueError(f'{where}: gc_context RoI extractors are not supported')
        self.layer_args = _roi_layer_args(extractor, where)
        self.head = head

    def forward(self, *feats_and_rois: Tensor):
        levels = len(self.layer_args)
        feats, rois = feats_and_rois[:levels], feats_and_rois[levels:]
        pooled = [
            RoIAlignFunction.apply(f, r, *args) for f, r, args in zip(feats, rois, self.layer_args)
        ]
        return self.head(torch.cat(pooled))


def roi_stages(roi_head: nn.Module) -> List[dict]:
    """The R-CNN stages of a StandardRoIHead (one) or CascadeRoIHead (``num_stages``): per stage
    its bbox extractor and head, mask extractor and head (if any), and the names of its graphs
    (``roi_bbox`` / ``roi_mask``, with ``_<stage>`` for Cascade). Meta, export and checks all
    read the stages from here."""
    cascade = support_of(roi_head, 'two_stage').cascade
    stages = []
    for i in range(roi_head.num_stages if cascade else 1):

        def pick(modules):
            return modules[i] if cascade else modules

        suffix = f'_{i}' if cascade else ''
        stage = dict(
            bbox_extractor=pick(roi_head.bbox_roi_extractor), bbox_head=pick(roi_head.bbox_head),
            bbox_graph='roi_bbox' + suffix)
        if roi_head.with_mask:
            stage.update(
                mask_extractor=pick(roi_head.mask_roi_extractor),
                mask_head=pick(roi_head.mask_head), mask_graph='roi_mask' + suffix)
        stages.append(stage)
    return stages


def _refuse(part: str, module: nn.Module, supported: Tuple[str, ...], where: str) -> None:
    raise ValueError(f'{where}: ONNX export supports two-stage detectors with {supported} as '
                     f'{part}; got {type(module).__name__}')


def check_supported(detector: nn.Module, where: str) -> None:
    """Raise ValueError naming the first part of `detector` the three graphs cannot express."""
    # the roi_head first: Sparse R-CNN's lacks the attributes read below
    if support_of(detector.roi_head, 'two_stage') is None:
        _refuse('roi_head', detector.roi_head, supported_names('two_stage'), where)
    parts = supported_parts()

    def check(part, module):
        if type(module) not in parts[part]:
            _refuse(part, module, tuple(c.__name__ for c in parts[part]), where)

    check('rpn_head', detector.rpn_head)
    roi_head = detector.roi_head
    if roi_head.with_mask and roi_head.share_roi_extractor:
        raise ValueError(f'{where}: share_roi_extractor=True is not supported')
    for stage in roi_stages(roi_head):
        check('extractor', stage['bbox_extractor'])
        if 'mask_head' in stage:
            check('extractor', stage['mask_extractor'])
            check('mask_head', stage['mask_head'])
        head = stage['bbox_head']
        if head.custom_cls_channels or getattr(head, 'custom_activation', False):
            raise ValueError(f'{where}: bbox heads with a custom classification activation are '
                             'not supported')
