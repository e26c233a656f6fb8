"""The torch modules that single-graph exports record: a segmentor up to its class map, a
single-stage detector up to its raw head outputs, DETR up to its last decoder layer, a
classifier up to its logits.

Where a graph ends, and why: everything up to raw per-level head outputs (detection) or the
class map (segmentation) is in the graph. Anchor boxes, box decoding, score filtering and NMS
stay in numpy (:mod:`mmpvt_runtime`): their data-dependent sizes and mmcv's NMS op have no
portable ONNX form that keeps mmdet's exact semantics (top-k per level, class offsets, min-size
filter). Two-stage detectors are in :mod:`.two_stage`.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _ShapeUpsample(nn.Module):
    """mmseg's ``Upsample(scale_factor=k)`` (k integral) with the output size computed from the
    input's size inside the graph. mmseg's module computes ``int(side * k)`` in Python, which both
    exporters record as a constant (measured: a Semantic FPN graph exported at 256x256 gave 418 of
    12,288 pixels wrong at 192x256)."""

    def __init__(self, factor: int, mode: str, align_corners) -> None:
        super().__init__()
        self.factor, self.mode, self.align_corners = factor, mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        size = (x.shape[-2] * self.factor, x.shape[-1] * self.factor)
        return F.interpolate(x, size=size, mode=self.mode, align_corners=self.align_corners)


def replace_python_sized_upsampling(model: nn.Module) -> int:
    """Swap mmseg ``Upsample`` modules with an integral scale factor for :class:`_ShapeUpsample`
    (same output, bit for bit: F.interpolate gets the same size); returns how many."""
    from mmseg.models.utils import Upsample
    count = 0
    for name, module in list(model.named_modules()):
        if not isinstance(module, Upsample) or getattr(module, 'size', None) is not None:
            continue
        factor = module.scale_factor
        if not isinstance(factor, (int, float)) or float(factor) != int(factor):
            raise ValueError(f'{name}: Upsample(scale_factor={factor}) cannot be exported with '
                             'symbolic sizes (only integral factors)')
        parent = model.get_submodule(name.rsplit('.', 1)[0]) if '.' in name else model
        setattr(parent,
                name.rsplit('.', 1)[-1],
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
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(x))
        logits = F.interpolate(logits, size=x.shape[-2:], mode='bilinear',
                               align_corners=self.align_corners)
        logits = F.interpolate(logits, size=size_ref.shape[-2:], mode='bilinear',
                               align_corners=self.align_corners)
        return logits.argmax(dim=1)


class DenseDetectorGraph(nn.Module):
    """A single-stage mmdet detector up to its head: ``input`` (B, 3, H, W) -> ``cls_0..`` (B,
    A*K, h_l, w_l) logits, ``reg_0..`` (B, A*4, h_l, w_l) and, for heads with a third output
    (ATSS), ``ctr_0..`` (B, A, h_l, w_l) centerness logits. ``reg`` holds box deltas or, with
    `distances` (GFL), the integrated distances (left, top, right, bottom) in pixels: softmax
    over the ``reg_max + 1`` bins, expectation, times the level's stride, as
    GFLHead.predict_by_feat computes them."""

    def __init__(self, detector: nn.Module, distances: bool = False) -> None:
        super().__init__()
        self.detector, self.distances = detector, distances

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        head = self.detector.bbox_head
        cls_scores, bbox_preds, *factors = head(self.detector.extract_feat(x))
        if self.distances:
            bbox_preds = [
                self._distances(p, stride[0])
                for p, stride in zip(bbox_preds, head.prior_generator.strides)
            ]
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
        detr = self.detector
        feat = detr.extract_feat(x)[-1]
        masks = F.interpolate(pad_mask.unsqueeze(1).float(), size=feat.shape[-2:])
        masks = masks.to(torch.bool).squeeze(1)
        pos = detr.positional_encoding(masks).flatten(2).permute(0, 2, 1)
        masks = masks.flatten(1)
        encoded = detr.forward_encoder(
            feat=feat.flatten(2).permute(0, 2, 1), feat_mask=masks, feat_pos=pos)
        decoder_inputs, _ = detr.pre_decoder(**encoded)
        decoder_inputs.update(memory_mask=masks, memory_pos=pos)
        hidden = detr.forward_decoder(**decoder_inputs)['hidden_states']
        cls_scores, bbox_preds = detr.bbox_head(hidden[-1:])
        return cls_scores[-1], bbox_preds[-1]


class ClassifierGraph(nn.Module):
    """An mmpretrain ``ImageClassifier`` up to its logits: ``input`` (B, 3, H, W) normalised
    image -> ``logits`` (B, K), what ``model(x, mode='tensor')`` returns. The softmax and the
    best classes are computed in numpy (:mod:`mmpvt_runtime.classify`), as the inferencer
    computes them from these logits."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.head(self.classifier.extract_feat(x))
