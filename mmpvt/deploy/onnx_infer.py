"""Run a model exported by :func:`mmpvt.deploy.export.export_model` with onnxruntime and numpy
only: no PyTorch, no mmdet/mmseg (this file imports neither, so it can be copied on its own).

The file's ``mmpvt`` metadata says how to prepare an image and read the outputs, reproducing
``model.predict`` of the mmdet/mmseg model that was exported:

* preprocessing: the config's keep-ratio ``Resize`` (mmcv's rule: scale = min(long / max side,
  short / min side), sides rounded with int(x * scale + 0.5), cv2 bilinear) or ``AlignResize``
  (then each side resized up to a multiple of its divisor); BGR -> RGB; (x - mean) / std; zero
  padding to ``pad_size_divisor`` at the bottom/right (after normalisation, as mmengine does);
* detection (RetinaNet, ATSS, GFL): per level sigmoid scores, scores > score_thr, the top
  ``nms_pre`` (score, anchor, class) entries, ``DeltaXYWHBBoxCoder`` decoding (GFL: distances
  from the anchor centre) clipped to the resized image, rescaling to the original image, ATSS's
  scores times sigmoid(centerness), boxes without area dropped (``min_bbox_size`` 0), class-wise
  NMS (mmcv's ``batched_nms``: one greedy NMS on class-offset boxes), the best ``max_per_img``;
* two-stage detection (Faster / Mask R-CNN; three graphs, see ``mmpvt.deploy.two_stage``): the
  RPN's proposals as RPNHead.predict, each proposal routed to its pyramid level, the R-CNN's
  softmax scores and class-wise boxes, multiclass NMS; masks: the detections' mask logits,
  sigmoid, pasted into the original image by bilinear sampling and thresholded;
* DETR: the graph takes the image and its padding mask and returns the last decoder layer's
  class logits and normalised boxes; softmax, the best ``max_per_img`` queries, boxes scaled to
  the resized image, clipped and rescaled;
* segmentation: the graph already returns the class map at the original size.
"""
import json
import math
import os
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np


def _rescaled_size(h: int, w: int, scale: Sequence[int]) -> Tuple[int, int]:
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def preprocess(image: np.ndarray, meta: dict) -> Tuple[np.ndarray, dict]:
    """BGR uint8 (H0, W0, 3) -> ((1, 3, H, W) float32 input, image info)."""
    h0, w0 = image.shape[:2]
    resize = meta['resize']
    h, w = _rescaled_size(h0, w0, resize['scale'])
    img = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if resize['type'] == 'align':
        d = resize['size_divisor']
        h, w = math.ceil(h / d) * d, math.ceil(w / d) * d
        if (h, w) != img.shape[:2]:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    x = img.astype(np.float32)
    if meta['bgr_to_rgb']:
        x = x[..., ::-1]
    x = (x - np.asarray(meta['mean'], np.float32)) / np.asarray(meta['std'], np.float32)
    d = meta['pad_size_divisor']
    ph, pw = math.ceil(h / d) * d, math.ceil(w / d) * d
    x = np.pad(x, ((0, ph - h), (0, pw - w), (0, 0)))
    info = dict(ori_shape=(h0, w0), img_shape=(h, w), scale_factor=(w / w0, h / h0))
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), info


def grid_anchors(base: np.ndarray, stride: Sequence[float], hw: Tuple[int, int]) -> np.ndarray:
    """(h*w*A, 4) anchors of one level, location-major (row by row), as mmdet's AnchorGenerator."""
    xs = np.arange(hw[1], dtype=np.float32) * stride[0]
    ys = np.arange(hw[0], dtype=np.float32) * stride[1]
    xx = np.tile(xs, hw[0])
    yy = np.repeat(ys, hw[1])
    shifts = np.stack([xx, yy, xx, yy], axis=1)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits in float32."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _clip_to_image(boxes: np.ndarray, img_shape: Tuple[int, int]) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 clipped in place to [0, W] x [0, H]; returned for chaining."""
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, img_shape[1])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, img_shape[0])
    return boxes


def _to_original(boxes: np.ndarray, info: dict) -> np.ndarray:
    """Boxes in resized-image pixels -> original-image pixels (mmdet's rescale)."""
    sx, sy = info['scale_factor']
    return boxes / np.asarray([sx, sy, sx, sy], np.float32)


def _has_area(boxes: np.ndarray, min_size: float) -> np.ndarray:
    """mmdet's min_bbox_size filter: width and height both > min_size."""
    return ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)


def decode_boxes(anchors: np.ndarray, deltas: np.ndarray, coder: dict,
                 img_shape: Tuple[int, int]) -> np.ndarray:
    """DeltaXYWHBBoxCoder.decode (no centre clamp) in float32."""
    d = deltas * np.asarray(coder['stds'], np.float32) + np.asarray(coder['means'], np.float32)
    pxy = (anchors[:, :2] + anchors[:, 2:]) * 0.5
    pwh = anchors[:, 2:] - anchors[:, :2]
    max_ratio = np.float32(abs(math.log(coder['wh_ratio_clip'])))
    gxy = pxy + pwh * d[:, :2]
    gwh = pwh * np.exp(np.clip(d[:, 2:], -max_ratio, max_ratio))
    boxes = np.concatenate([gxy - gwh * 0.5, gxy + gwh * 0.5], axis=1)
    return _clip_to_image(boxes, img_shape) if coder['clip_border'] else boxes


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS (mmcv's: areas without +1, suppress IoU > threshold); kept indices by score."""
    order = np.argsort(-scores, kind='stable')
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    suppressed = np.zeros(len(boxes), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[:, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[:, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[:, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
        iou = inter / (areas[i] + areas - inter)
        suppressed |= iou > iou_threshold
    return np.asarray(keep, np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray,
                iou_threshold: float, split_thr: int = 10000) -> np.ndarray:
    """mmcv's ``batched_nms``: NMS within each ``idxs`` group; kept indices by score. Below
    split_thr boxes it is one NMS on boxes offset by group (idx * (max coordinate + 1)), above it
    one NMS per group, as mmcv does (the two can differ in the last bits of an IoU)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if len(boxes) < split_thr:
        offsets = idxs.astype(np.float32) * (boxes.max() + np.float32(1))
        return nms(boxes + offsets[:, None], scores, iou_threshold)
    kept = [np.nonzero(idxs == i)[0] for i in np.unique(idxs)]
    kept = np.concatenate([members[nms(boxes[members], scores[members], iou_threshold)]
                           for members in kept])
    return kept[np.argsort(-scores[kept], kind='stable')]


def decode_distances(anchors: np.ndarray, dist: np.ndarray, coder: dict,
                     img_shape: Tuple[int, int]) -> np.ndarray:
    """GFL: DistancePointBBoxCoder.decode from the anchor centres, (left, top, right, bottom)."""
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    boxes = np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1)
    return _clip_to_image(boxes, img_shape) if coder['clip_border'] else boxes


def detections(outputs: List[np.ndarray], meta: dict, info: dict) -> Dict[str, np.ndarray]:
    """Raw head outputs of one image -> dict(bboxes (N, 4) in original pixels, scores, labels)."""
    levels = len(meta['strides'])
    k, cfg, coder = meta['num_classes'], meta['test_cfg'], meta['coder']
    all_boxes, all_scores, all_labels, all_factors = [], [], [], []
    for level in range(levels):
        cls, reg = outputs[level][0], outputs[levels + level][0]
        base = np.asarray(meta['base_anchors'][level], np.float32)
        anchors = grid_anchors(base, meta['strides'][level], cls.shape[-2:])
        scores = _sigmoid(cls.transpose(1, 2, 0).reshape(-1, k))
        deltas = reg.transpose(1, 2, 0).reshape(-1, 4)
        flat = scores.reshape(-1)
        valid = np.nonzero(flat > cfg['score_thr'])[0]
        order = np.argsort(-flat[valid], kind='stable')
        if cfg['nms_pre'] > 0:
            order = order[:cfg['nms_pre']]
        picked = valid[order]
        anchor_idx, labels = picked // k, picked % k
        decode = decode_distances if coder.get('type') == 'distance' else decode_boxes
        all_boxes.append(decode(anchors[anchor_idx], deltas[anchor_idx], coder,
                                info['img_shape']))
        all_scores.append(flat[picked])
        all_labels.append(labels)
        if meta.get('score_factors'):  # ATSS: sigmoid(centerness) of the anchor
            ctr = outputs[2 * levels + level][0].transpose(1, 2, 0).reshape(-1)
            all_factors.append(_sigmoid(ctr[anchor_idx]))
    boxes = np.concatenate(all_boxes).astype(np.float32)
    scores = np.concatenate(all_scores).astype(np.float32)
    labels = np.concatenate(all_labels).astype(np.int64)
    boxes = _to_original(boxes, info)
    if all_factors:
        scores = scores * np.concatenate(all_factors).astype(np.float32)
    if cfg['min_bbox_size'] >= 0:
        wh_ok = _has_area(boxes, cfg['min_bbox_size'])
        boxes, scores, labels = boxes[wh_ok], scores[wh_ok], labels[wh_ok]
    keep = batched_nms(boxes, scores, labels, cfg['iou_threshold'])[:cfg['max_per_img']]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    return dict(bboxes=boxes, scores=scores, labels=labels)


# ---- two-stage detectors (Faster / Mask R-CNN): see mmpvt.deploy.two_stage for the graphs ----
def rpn_proposals(cls_list: List[np.ndarray], reg_list: List[np.ndarray], rpn: dict,
                  img_shape: Tuple[int, int]) -> np.ndarray:
    """RPNHead.predict (rescale=False) of one image: per level the top ``nms_pre`` anchors by
    sigmoid score, decoded and clipped to the resized image, boxes without area dropped, NMS
    within each level, the best ``max_per_img``. Returns (N, 4) boxes in resized pixels."""
    cfg = rpn['test_cfg']
    boxes, scores, levels = [], [], []
    for level, (cls, reg) in enumerate(zip(cls_list, reg_list)):
        anchors = grid_anchors(np.asarray(rpn['base_anchors'][level], np.float32),
                               rpn['strides'][level], cls.shape[-2:])
        score = _sigmoid(cls[0].transpose(1, 2, 0).reshape(-1))
        deltas = reg[0].transpose(1, 2, 0).reshape(-1, 4)
        if 0 < cfg['nms_pre'] < len(score):
            order = np.argsort(-score, kind='stable')[:cfg['nms_pre']]
            score, deltas, anchors = score[order], deltas[order], anchors[order]
        boxes.append(decode_boxes(anchors, deltas, rpn['coder'], img_shape))
        scores.append(score)
        levels.append(np.full(len(score), level, np.int64))
    boxes = np.concatenate(boxes).astype(np.float32)
    scores, levels = np.concatenate(scores).astype(np.float32), np.concatenate(levels)
    if cfg['min_bbox_size'] >= 0:
        ok = _has_area(boxes, cfg['min_bbox_size'])
        boxes, scores, levels = boxes[ok], scores[ok], levels[ok]
    keep = batched_nms(boxes, scores, levels, cfg['iou_threshold'])[:cfg['max_per_img']]
    return boxes[keep]


def map_roi_levels(boxes: np.ndarray, finest_scale: float, num_levels: int) -> np.ndarray:
    """SingleRoIExtractor.map_roi_levels: level floor(log2(sqrt(area) / finest_scale + 1e-6)),
    clipped to [0, num_levels - 1] (boxes (N, 4), float32 as mmdet computes it)."""
    scale = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    levels = np.floor(np.log2(scale / np.float32(finest_scale) + np.float32(1e-6)))
    return np.clip(levels, 0, num_levels - 1).astype(np.int64)


def run_roi_graph(session, feats: List[np.ndarray], boxes: np.ndarray,
                  roi: dict) -> List[np.ndarray]:
    """Run a RoI-head graph on `boxes` (N, 4) of image 0: each box goes to its pyramid level
    (``rois_l`` input), and the outputs' rows are put back in the order of `boxes`."""
    num_levels = len(roi['strides'])
    levels = map_roi_levels(boxes, roi['finest_scale'], num_levels)
    feed = {f'feat_{i}': feats[i] for i in range(num_levels)}
    for i in range(num_levels):
        picked = boxes[levels == i]
        feed[f'rois_{i}'] = np.concatenate([np.zeros((len(picked), 1), np.float32), picked],
                                           axis=1).astype(np.float32)
    order = np.argsort(levels, kind='stable')
    restored = []
    for out in session.run(None, feed):
        rows = np.empty_like(out)
        rows[order] = out
        restored.append(rows)
    return restored


def class_boxes(rois: np.ndarray, bbox_pred: np.ndarray, stage: dict, num_classes: int,
                img_shape: Tuple[int, int]) -> np.ndarray:
    """(N, K, 4) boxes decoded from the RoIs with each class's deltas (class-agnostic heads:
    the same box for every class), clipped to the resized image."""
    n = len(rois)
    per_roi = 1 if stage['reg_class_agnostic'] else num_classes
    boxes = decode_boxes(np.repeat(rois, per_roi, axis=0), bbox_pred.reshape(-1, 4),
                         stage['coder'], img_shape).reshape(n, per_roi, 4)
    return np.broadcast_to(boxes, (n, num_classes, 4)).astype(np.float32)


def rcnn_detections(cls_score: np.ndarray, bbox_pred: np.ndarray, proposals: np.ndarray,
                    rcnn: dict, stage: dict, img_shape: Tuple[int, int]
                    ) -> Dict[str, np.ndarray]:
    """BBoxHead.predict_by_feat (rescale=False) + multiclass_nms: softmax scores, per-class boxes
    decoded from the proposals and clipped, (box, class) pairs with score > score_thr, class-wise
    NMS, the best ``max_per_img``. Boxes stay in resized pixels."""
    k, cfg = rcnn['num_classes'], rcnn['test_cfg']
    n = len(proposals)
    scores = _softmax(cls_score)
    boxes = class_boxes(proposals, bbox_pred, stage, k, img_shape).reshape(-1, 4)
    flat, labels = scores[:, :k].reshape(-1), np.tile(np.arange(k, dtype=np.int64), n)
    valid = np.nonzero(flat > cfg['score_thr'])[0]
    boxes, flat, labels = boxes[valid], flat[valid], labels[valid]
    keep = batched_nms(boxes, flat, labels, cfg['iou_threshold'])[:cfg['max_per_img']]
    return dict(bboxes=boxes[keep], scores=flat[keep], labels=labels[keep])


def _bilinear_weights(coords: np.ndarray, size: int) -> np.ndarray:
    """(N, P) sample positions in pixel units -> (N, P, size) bilinear weights, zero outside
    [0, size) (grid_sample's zero padding)."""
    low = np.floor(coords)
    frac = (coords - low).astype(np.float32)
    low = low.astype(np.int64)
    weights = np.zeros(coords.shape + (size, ), np.float32)
    for idx, w in ((low, 1 - frac), (low + 1, frac)):
        inside = (idx >= 0) & (idx < size)
        n, p = np.nonzero(inside)
        weights[n, p, idx[inside]] += w[inside]
    return weights


def paste_masks(probs: np.ndarray, boxes: np.ndarray, ori_shape: Tuple[int, int],
                threshold: float) -> np.ndarray:
    """FCNMaskHead's CPU pasting + threshold: (N, M, M) probabilities, (N, 4) boxes in original
    pixels -> (N, H0, W0) bool. As mmdet does on CPU, each mask is sampled (grid_sample,
    bilinear, align_corners=False, zero padding) at the pixel centres of its own box's region
    (box widened by a pixel, clipped to the image); bilinear sampling on a separable grid is the
    product Wy @ mask @ Wx^T."""
    h0, w0 = ori_shape
    out = np.zeros((len(boxes), h0, w0), bool)
    size = probs.shape[-1]

    def coords(lo, hi, start, end):
        centres = np.arange(lo, hi, dtype=np.float32) + np.float32(0.5)
        with np.errstate(divide='ignore', invalid='ignore'):
            g = (centres - start) / (end - start) * 2 - 1
        g[np.isinf(g)] = 0  # a box without width or height, as mmdet does
        return ((g + 1) * size - 1) / 2  # grid_sample's unnormalisation, align_corners=False

    for i, (x0, y0, x1, y1) in enumerate(boxes.astype(np.float32)):
        xa, ya = int(max(np.floor(x0) - 1, 0)), int(max(np.floor(y0) - 1, 0))
        xb, yb = max(int(min(np.ceil(x1) + 1, w0)), xa), max(int(min(np.ceil(y1) + 1, h0)), ya)
        wy = _bilinear_weights(coords(ya, yb, y0, y1)[None], size)[0]
        wx = _bilinear_weights(coords(xa, xb, x0, x1)[None], size)[0]
        out[i, ya:yb, xa:xb] = wy @ probs[i].astype(np.float32) @ wx.T >= threshold
    return out


def two_stage_detections(outputs: Dict[str, np.ndarray], roi_sessions: dict, meta: dict,
                         info: dict) -> Dict[str, np.ndarray]:
    """Stage-1 outputs of one image (by name) -> dict(bboxes, scores, labels[, masks]) in original
    pixels, as TwoStageDetector.predict. Cascade: each stage but the last refines the RoIs with
    its deltas for the RoI's best class; the stages' class logits and mask probabilities are
    averaged."""
    rpn, rcnn = meta['rpn'], meta['rcnn']
    stages, k = rcnn['stages'], rcnn['num_classes']
    levels = len(rpn['strides'])
    rois = rpn_proposals([outputs[f'rpn_cls_{i}'] for i in range(levels)],
                         [outputs[f'rpn_reg_{i}'] for i in range(levels)], rpn, info['img_shape'])

    def roi_outputs(graph, roi, boxes):
        feats = [outputs[f'feat_{i}'][:1] for i in range(len(roi['strides']))]
        return run_roi_graph(roi_sessions[graph], feats, boxes, roi)

    if len(rois):
        logits = []
        for s, stage in enumerate(stages):
            cls_score, bbox_pred = roi_outputs(stage['bbox_graph'], stage['bbox_roi'], rois)
            logits.append(cls_score)
            if s < len(stages) - 1:
                best = cls_score[:, :-1].argmax(axis=1)
                rois = class_boxes(rois, bbox_pred, stage, k, info['img_shape'])
                rois = np.ascontiguousarray(rois[np.arange(len(rois)), best])
        cls_score = logits[0] if len(logits) == 1 else sum(logits) / np.float32(len(logits))
        result = rcnn_detections(cls_score, bbox_pred, rois, rcnn, stages[-1], info['img_shape'])
    else:
        result = dict(bboxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
                      labels=np.zeros(0, np.int64))
    scaled = _to_original(result['bboxes'], info)
    if 'mask_graph' in stages[0]:
        probs = np.zeros((0, 1, 1), np.float32)
        if len(scaled):
            per_stage = [_sigmoid(roi_outputs(stage['mask_graph'], stage['mask_roi'],
                                              result['bboxes'])[0]) for stage in stages]
            merged = per_stage[0] if len(per_stage) == 1 else np.mean(per_stage, axis=0)
            channel = 0 if rcnn['class_agnostic_mask'] else result['labels']
            probs = merged[np.arange(len(merged)), channel]
        result['masks'] = paste_masks(probs, scaled, info['ori_shape'], rcnn['mask_thr_binary'])
    result['bboxes'] = scaled
    return result


def detr_detections(cls_score: np.ndarray, bbox_pred: np.ndarray, meta: dict,
                    info: dict) -> Dict[str, np.ndarray]:
    """DETRHead.predict_by_feat (softmax) of one image: (Q, K+1) logits and (Q, 4) normalised
    (cx, cy, w, h) -> the best ``max_per_img`` queries by their best non-background class,
    boxes scaled to the resized image, clipped, then rescaled to the original image."""
    probs = _softmax(cls_score)[:, :-1]
    labels, scores = probs.argmax(axis=1), probs.max(axis=1)
    order = np.argsort(-scores, kind='stable')[:meta['max_per_img']]
    cxcy, wh = bbox_pred[order, :2], bbox_pred[order, 2:]
    boxes = np.concatenate([cxcy - 0.5 * wh, cxcy + 0.5 * wh], axis=1).astype(np.float32)
    h, w = info['img_shape']
    boxes = _to_original(_clip_to_image(boxes * np.asarray([w, h, w, h], np.float32),
                                        info['img_shape']), info)
    return dict(bboxes=boxes, scores=scores[order], labels=labels[order].astype(np.int64))


class OnnxModel:
    """An exported mmpvt model in onnxruntime: ``OnnxModel('model.onnx')(bgr_image)``."""

    def __init__(self, path: str, providers: Sequence[str] = ('CPUExecutionProvider', )) -> None:
        import onnxruntime as ort
        self.session = ort.InferenceSession(str(path), providers=list(providers))
        custom = self.session.get_modelmeta().custom_metadata_map
        if 'mmpvt' not in custom:
            raise ValueError(f'{path} has no mmpvt metadata: export it with '
                             'tools/deploy/export_onnx.py')
        self.meta = json.loads(custom['mmpvt'])
        # Two-stage detectors: the RoI-head graphs written next to this file.
        self.roi_sessions = {}
        for key, name in self.meta.get('graphs', {}).items():
            companion = os.path.join(os.path.dirname(os.path.abspath(str(path))), name)
            if not os.path.isfile(companion):
                raise ValueError(f'{path} needs its {key} graph {companion}, which is missing: '
                                 'keep the files tools/deploy/export_onnx.py wrote together')
            self.roi_sessions[key] = ort.InferenceSession(companion, providers=list(providers))

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """BGR uint8 image -> dict(bboxes, scores, labels[, masks (N, H0, W0) bool]) or
        dict(seg_map (H0, W0))."""
        x, info = preprocess(image, self.meta)
        if self.meta['task'] == 'seg':
            size_ref = np.zeros((1, *info['ori_shape']), np.uint8)
            seg = self.session.run(None, {'input': x, 'size_ref': size_ref})[0]
            return dict(seg_map=seg[0])
        if self.meta['task'] == 'detr':
            pad_mask = np.ones((1, *x.shape[-2:]), np.uint8)
            pad_mask[:, :info['img_shape'][0], :info['img_shape'][1]] = 0
            cls_score, bbox_pred = self.session.run(None, {'input': x, 'pad_mask': pad_mask})
            return detr_detections(cls_score[0], bbox_pred[0], self.meta, info)
        outputs = self.session.run(None, {'input': x})
        if self.meta['task'] == 'two_stage':
            names = [o.name for o in self.session.get_outputs()]
            return two_stage_detections(dict(zip(names, outputs)), self.roi_sessions, self.meta,
                                        info)
        return detections(outputs, self.meta, info)


def draw(image: np.ndarray, result: Dict[str, np.ndarray], classes: Sequence[str] = (),
         score_thr: float = 0.3) -> np.ndarray:
    """A copy of `image` with boxes (score >= score_thr) and labels, or the class map blended."""
    out = image.copy()
    rng = np.random.RandomState(0)
    colours = rng.randint(40, 255, size=(max(len(classes), 256), 3))
    if 'seg_map' in result:
        overlay = colours[result['seg_map'] % len(colours)].astype(np.uint8)
        return cv2.addWeighted(out, 0.5, overlay, 0.5, 0)
    masks = result.get('masks', [None] * len(result['bboxes']))
    for box, score, label, mask in zip(result['bboxes'], result['scores'], result['labels'],
                                       masks):
        if score < score_thr:
            continue
        colour = tuple(int(c) for c in colours[label])
        if mask is not None:
            out[mask] = (0.5 * out[mask] + 0.5 * np.asarray(colour)).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        name = classes[label] if label < len(classes) else str(label)
        cv2.putText(out, f'{name} {score:.2f}', (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.3, colour, 1, cv2.LINE_AA)
    return out
