"""ONNX export of PVT / PVTv2 backbones and of whole detectors and segmentors.

Both of torch's exporters work with symbolic input sizes (batch, H, W; sizes that the strides do
not divide included): the TorchScript one (``dynamo=False``, ``dynamic_axes``) and the dynamo one
(``dynamo=True``, ``dynamic_shapes`` with ``Dim.DYNAMIC``; named ``Dim`` objects trip a torch
2.13 bug while it reports the derived size relations). What makes this possible is
:func:`mmpvt.models.layers.tracing_shapes`: while an exporter records the model, padding amounts,
position-table sizes and the b2-li pooling bins are computed from the input's size inside the
graph instead of being Python numbers of the example.

mmdeploy 1.3.1 (the last release) is not used: installing it downgrades onnx to 1.17 and
protobuf to 3.20, and its ``torch2onnx`` fails on torch 2.13 (it relies on the TorchScript
exporter, which torch 2.13 no longer selects by default); see the README's deployment section.
"""
import os.path as osp
from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

from ..fileio import atomic_path
from .meta import deploy_meta

BACKBONE_OUTPUTS = ('c2', 'c3', 'c4', 'c5')


def export_program(model: nn.Module, example: Tuple[Tensor, ...],
                   dynamic_axes: Sequence[Sequence[int]]) -> 'torch.export.ExportedProgram':
    """torch.export of `model` in eval mode; dynamic_axes: per input, the axes left symbolic
    (``Dim.DYNAMIC``)."""
    dim = torch.export.Dim.DYNAMIC
    shapes = tuple({axis: dim for axis in axes} for axes in dynamic_axes)
    model.eval()
    with torch.no_grad():
        return torch.export.export(model, tuple(example), dynamic_shapes=shapes)


def export_onnx(model: nn.Module, example: Tuple[Tensor, ...], path: str,
                input_names: Sequence[str], output_names: Sequence[str],
                dynamic_dims: dict, opset: int = 17, dynamo: bool = False) -> str:
    """Export `model` (called on `example`) to ONNX at `path`, atomically.

    dynamic_dims: {input name: {axis: name}}; those axes are symbolic in the graph (all other
    sizes are fixed). dynamo: torch.export + torch's dynamo exporter (opset >= 18) instead of the
    TorchScript exporter; `model` may then also be an ``ExportedProgram``. Returns `path`.
    """
    if opset < 17:
        raise ValueError(f'opset must be >= 17 (LayerNormalization), got {opset}')
    if dynamo and opset < 18:
        raise ValueError(f'the dynamo exporter writes opset >= 18, got {opset}')
    with torch.no_grad(), atomic_path(path) as tmp:
        if dynamo:
            program = model if isinstance(model, torch.export.ExportedProgram) else \
                export_program(model, example, [sorted(dynamic_dims.get(name, {}))
                                                for name in input_names])
            onnx_program = torch.onnx.export(program, example, dynamo=True,
                                             input_names=list(input_names),
                                             output_names=list(output_names),
                                             opset_version=opset)
            onnx_program.save(tmp)
        else:
            model.eval()
            torch.onnx.export(model, example, tmp, dynamo=False, opset_version=opset,
                              input_names=list(input_names), output_names=list(output_names),
                              dynamic_axes=dynamic_dims)
    return path


def export_backbone(model: nn.Module, path: str, shape: Sequence[int] = (2, 3, 224, 320),
                    opset: int = 17, dynamic: bool = True, dynamo: bool = False,
                    program: 'torch.export.ExportedProgram' = None) -> str:
    """A PVT / PVTv2 backbone to ONNX: input ``input`` (B, 3, H, W), outputs ``c2..c5`` (one
    per ``out_indices`` entry). With `dynamic`, B, H and W are symbolic. With `dynamo`, an
    already exported `program` of `model` may be given."""
    names = BACKBONE_OUTPUTS[:len(model.out_indices)]
    dims = {'input': {0: 'batch', 2: 'height', 3: 'width'}} if dynamic else {}
    if not dynamic and dynamo:
        raise ValueError('the dynamo export here is always dynamic; use dynamo=False for a '
                         'fixed-size graph')
    return export_onnx(program if program is not None else model, (torch.randn(*shape),),
                       osp.abspath(path), ['input'], names, dims, opset, dynamo)


# ---- whole models ------------------------------------------------------------------------------
# Where the graph ends: everything up to raw per-level head outputs (detection) or the class map
# (segmentation) is in the graph. Anchor boxes, box decoding, score filtering and NMS stay in
# numpy (mmpvt.deploy.onnx_infer): their data-dependent sizes and mmcv's NMS op have no portable
# ONNX form that keeps mmdet's exact semantics (top-k per level, class offsets, min-size filter).
class _ShapeUpsample(nn.Module):
    """mmseg's ``Upsample(scale_factor=k)`` (k integral) with the output size computed from the
    input's size inside the graph. mmseg's module computes ``int(side * k)`` in Python, which both
    exporters record as a constant (measured: a Semantic FPN graph exported at 256x256 gave 418 of
    12,288 pixels wrong at 192x256)."""

    def __init__(self, factor: int, mode: str, align_corners) -> None:
        super().__init__()
        self.factor, self.mode, self.align_corners = factor, mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        import torch.nn.functional as F
        size = (x.shape[-2] * self.factor, x.shape[-1] * self.factor)
        return F.interpolate(x, size=size, mode=self.mode, align_corners=self.align_corners)


def replace_python_sized_upsampling(model: nn.Module) -> int:
    """Swap mmseg ``Upsample`` modules with an integral scale factor for :class:`_ShapeUpsample`
    (same output, bit for bit: F.interpolate gets the same size); returns how many."""
    count = 0
    for name, module in list(model.named_modules()):
        if type(module).__name__ != 'Upsample' or getattr(module, 'size', None) is not None:
            continue
        factor = module.scale_factor
        if not isinstance(factor, (int, float)) or float(factor) != int(factor):
            raise ValueError(f'{name}: Upsample(scale_factor={factor}) cannot be exported with '
                             'symbolic sizes (only integral factors)')
        parent = model.get_submodule(name.rsplit('.', 1)[0]) if '.' in name else model
        setattr(parent, name.rsplit('.', 1)[-1],
                _ShapeUpsample(int(factor), module.mode, module.align_corners))
        count += 1
    return count


class SegmentorGraph(nn.Module):
    """An mmseg ``EncoderDecoder`` as mmseg's whole-image ``predict`` computes it.

    Inputs: ``input`` (B, 3, H, W) normalised image, ``size_ref`` (1, h0, w0) of any dtype whose
    shape is the original image size (its values are not read). Output: ``seg_map`` (B, h0, w0)
    int64 class indices: logits resized bilinearly to (H, W), then to (h0, w0), argmax.
    """

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        replace_python_sized_upsampling(segmentor)
        self.segmentor = segmentor
        self.align_corners = segmentor.decode_head.align_corners

    def forward(self, x: Tensor, size_ref: Tensor) -> Tensor:
        import torch.nn.functional as F
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(x))
        logits = F.interpolate(logits, size=x.shape[-2:], mode='bilinear',
                               align_corners=self.align_corners)
        logits = F.interpolate(logits, size=size_ref.shape[-2:], mode='bilinear',
                               align_corners=self.align_corners)
        return logits.argmax(dim=1)


# Anchor heads whose outputs mmpvt.deploy.onnx_infer decodes: sigmoid scores on anchors with
# DeltaXYWHBBoxCoder (RetinaNet; ATSS adds a centerness factor), or GFL's box distributions,
# integrated inside the graph into distances from the anchor centres.
SUPPORTED_DENSE_HEADS = ('RetinaHead', 'AnchorHead', 'ATSSHead', 'GFLHead')


class DenseDetectorGraph(nn.Module):
    """A single-stage mmdet detector up to its head: ``input`` (B, 3, H, W) -> ``cls_0..`` (B,
    A*K, h_l, w_l) logits, ``reg_0..`` (B, A*4, h_l, w_l) and, for ATSS, ``ctr_0..`` (B, A, h_l,
    w_l) centerness logits. ``reg`` holds box deltas, or for GFL the integrated distances
    (left, top, right, bottom) in pixels: softmax over the ``reg_max + 1`` bins, expectation,
    times the level's stride, as GFLHead.predict_by_feat computes them."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        self.gfl = type(detector.bbox_head).__name__ == 'GFLHead'

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        head = self.detector.bbox_head
        cls_scores, bbox_preds, *factors = head(self.detector.extract_feat(x))
        if self.gfl:
            bbox_preds = [self._distances(p, stride[0]) for p, stride in
                          zip(bbox_preds, head.prior_generator.strides)]
        return (*cls_scores, *bbox_preds, *(factors[0] if factors else ()))

    def _distances(self, pred: Tensor, stride: float) -> Tensor:
        b, _, h, w = pred.shape
        dist = self.detector.bbox_head.integral(pred.permute(0, 2, 3, 1)) * stride
        return dist.reshape(b, h, w, 4).permute(0, 3, 1, 2)


class DETRGraph(nn.Module):
    """mmdet 3.x ``DETR`` up to its last decoder layer's head outputs: ``input`` (B, 3, H, W)
    and ``pad_mask`` (B, H, W), 1 on the padding (mmdet builds it from each image's img_shape
    in Python, which an exporter would freeze) -> ``cls_score`` (B, Q, K+1) logits and
    ``bbox_pred`` (B, Q, 4) normalised (cx, cy, w, h). The rest of ``DETR.forward_transformer``
    is called as it is. Where mmdet drops the mask because no image is padded, an all-zero mask
    gives the same result."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tuple[Tensor, Tensor]:
        import torch.nn.functional as F
        detr = self.detector
        feat = detr.extract_feat(x)[-1]
        masks = F.interpolate(pad_mask.unsqueeze(1).float(), size=feat.shape[-2:])
        masks = masks.to(torch.bool).squeeze(1)
        pos = detr.positional_encoding(masks).flatten(2).permute(0, 2, 1)
        masks = masks.flatten(1)
        encoded = detr.forward_encoder(feat=feat.flatten(2).permute(0, 2, 1), feat_mask=masks,
                                       feat_pos=pos)
        decoder_inputs, _ = detr.pre_decoder(**encoded)
        decoder_inputs.update(memory_mask=masks, memory_pos=pos)
        hidden = detr.forward_decoder(**decoder_inputs)['hidden_states']
        cls_scores, bbox_preds = detr.bbox_head(hidden[-1:])
        return cls_scores[-1], bbox_preds[-1]


def export_model(config: str, checkpoint: str, out: str, shape: Sequence[int] = (800, 1344),
                 dynamic: bool = True, opset: int = 17, dynamo: bool = False) -> dict:
    """A detector (RetinaNet, ATSS, GFL, Faster/Mask R-CNN, DETR) or segmentor
    (EncoderDecoder) of `config` with `checkpoint` to ONNX at `out` (two-stage detectors: plus
    companion graphs next to it); returns the metadata written into the file."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    cfg = Config.fromfile(config)
    scope = cfg.get('default_scope')
    if scope not in ('mmdet', 'mmseg'):
        raise ValueError(f'{config}: default_scope must be mmdet or mmseg, got {scope!r}')
    init_default_scope(scope)
    if scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    two_stage = scope == 'mmdet' and hasattr(model, 'roi_head')
    detr = scope == 'mmdet' and type(model).__name__ == 'DETR'
    if detr and (type(model.bbox_head).__name__ != 'DETRHead'
                 or model.bbox_head.loss_cls.use_sigmoid):
        raise ValueError(f'{config}: DETR export supports DETRHead with softmax scores; got '
                         f'{type(model.bbox_head).__name__}')
    if two_stage:
        from .two_stage import check_supported
        check_supported(model, config)
        if dynamo:
            raise ValueError('two-stage detectors export with the TorchScript exporter only (their '
                             'RoiAlign node comes from a symbolic function); drop --dynamo')
    elif scope == 'mmdet' and not detr and type(getattr(model, 'bbox_head', None)).__name__ \
            not in SUPPORTED_DENSE_HEADS:
        raise ValueError(f'{config}: ONNX export covers RetinaNet, ATSS, GFL, Faster/Mask R-CNN, '
                         f'DETR and Semantic FPN; {type(model).__name__} with '
                         f'{type(getattr(model, "bbox_head", None)).__name__} is not supported')
    from ..models.checkpoints import load_checkpoint_file
    load_checkpoint_file(checkpoint)  # a clear error naming the file if it cannot be read
    ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
    dataset_meta = (ckpt.get('meta') or {}).get('dataset_meta')
    if dataset_meta:
        model.dataset_meta = dataset_meta
    elif cfg.get('metainfo'):
        model.dataset_meta = dict(cfg.metainfo)
    model.eval()
    h, w = shape
    x = torch.randn(1, 3, h, w)
    if scope == 'mmseg':
        task, graph = 'seg', SegmentorGraph(model)
        example = (x, torch.zeros(1, h, w, dtype=torch.uint8))
        inputs, outputs = ['input', 'size_ref'], ['seg_map']
        dims = {'input': {0: 'batch', 2: 'height', 3: 'width'},
                'size_ref': {1: 'ori_height', 2: 'ori_width'}} if dynamic else {}
    elif two_stage:
        return _export_two_stage(cfg, model, x, out, dynamic, opset)
    elif detr:
        task, graph = 'detr', DETRGraph(model)
        example = (x, torch.zeros(1, h, w, dtype=torch.uint8))
        inputs, outputs = ['input', 'pad_mask'], ['cls_score', 'bbox_pred']
        dims = {'input': {0: 'batch', 2: 'height', 3: 'width'},
                'pad_mask': {0: 'batch', 1: 'height', 2: 'width'}} if dynamic else {}
    else:
        task, graph = 'det', DenseDetectorGraph(model)
        levels = len(model.bbox_head.prior_generator.strides)
        example = (x, )
        inputs = ['input']
        outputs = [f'{kind}_{i}' for kind in ('cls', 'reg') for i in range(levels)]
        if type(model.bbox_head).__name__ == 'ATSSHead':
            outputs += [f'ctr_{i}' for i in range(levels)]
        dims = {'input': {0: 'batch', 2: 'height', 3: 'width'}} if dynamic else {}
    meta = deploy_meta(cfg, model, task)
    export_onnx(graph, example, out, inputs, outputs, dims, opset, dynamo)
    _store_meta(out, meta)
    return meta


def _store_meta(path: str, meta: dict) -> None:
    import json

    import onnx
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = 'mmpvt', json.dumps(meta)
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)


def _export_two_stage(cfg, model: nn.Module, x: Tensor, out: str, dynamic: bool,
                      opset: int) -> dict:
    """The graphs of :mod:`mmpvt.deploy.two_stage`: `out` (stage 1, holding the metadata) and,
    next to it, ``<stem>.roi_bbox.onnx`` and ``<stem>.roi_mask.onnx`` (Mask R-CNN), or one pair
    per stage, ``<stem>.roi_bbox_<s>.onnx`` ... (Cascade). The companions are written first and
    removed again if anything fails, so `out` never names missing files."""
    import os

    from .two_stage import FeaturesAndProposalsGraph, RoIHeadGraph, roi_stages
    if opset < 16:
        raise ValueError(f'two-stage export needs opset >= 16 (RoiAlign half_pixel), got {opset}')
    meta = deploy_meta(cfg, model, 'two_stage')
    heads = {}  # graph name -> (RoI extractor, head, output names)
    for stage in roi_stages(model.roi_head):
        heads[stage['bbox_graph']] = (stage['bbox_extractor'], stage['bbox_head'],
                                      ['cls_score', 'bbox_pred'])
        if 'mask_head' in stage:
            heads[stage['mask_graph']] = (stage['mask_extractor'], stage['mask_head'],
                                          ['mask_pred'])
    num_feats = max(len(e.featmap_strides) for e, _, _ in heads.values())
    stage1 = FeaturesAndProposalsGraph(model, num_feats)
    rpn_levels = len(model.rpn_head.prior_generator.strides)
    names = ([f'feat_{i}' for i in range(num_feats)] +
             [f'rpn_cls_{i}' for i in range(rpn_levels)] +
             [f'rpn_reg_{i}' for i in range(rpn_levels)])
    with torch.no_grad():
        feats = stage1(x)[:num_feats]
    h, w = x.shape[-2:]
    stem = out[:-len('.onnx')] if out.endswith('.onnx') else out
    written = []
    try:
        for key, (extractor, head, outputs) in heads.items():
            levels = len(extractor.featmap_strides)
            # Three boxes per level for the trace; their number is symbolic in the graph.
            rois = [torch.tensor([[0, 0, 0, w / 4, h / 4], [0, w / 8, h / 8, w / 2, h / 2],
                                  [0, 1, 2, w - 1, h - 2]], dtype=torch.float32)] * levels
            dims = {f'rois_{i}': {0: f'num_rois_{i}'} for i in range(levels)}
            if dynamic:
                dims.update({f'feat_{i}': {2: f'feat_h_{i}', 3: f'feat_w_{i}'}
                             for i in range(levels)})
            path = f'{stem}.{key}.onnx'
            export_onnx(RoIHeadGraph(extractor, head, key), (*feats[:levels], *rois), path,
                        [f'feat_{i}' for i in range(levels)] + [f'rois_{i}' for i in range(levels)],
                        outputs, dims, opset)
            written.append(path)
        meta['graphs'] = {key: os.path.basename(f'{stem}.{key}.onnx') for key in heads}
        dims = {'input': {0: 'batch', 2: 'height', 3: 'width'}} if dynamic else {}
        export_onnx(stage1, (x, ), out, ['input'], names, dims, opset)
        _store_meta(out, meta)
    except BaseException:
        for path in written:
            os.remove(path)
        raise
    return meta
