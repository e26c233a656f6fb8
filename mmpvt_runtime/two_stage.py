"""Two-stage detectors (Faster / Mask R-CNN, Cascade (Mask) R-CNN): what runs in numpy between
and after the graphs that ``mmpvt.deploy.two_stage`` writes, as ``TwoStageDetector.predict``.

The main graph gives, for one image, ``feat_0..feat_{L-1}`` (1, C, h_l, w_l), the FPN levels the
RoI heads read, and the RPN's raw ``rpn_cls_l`` (1, A, h_l, w_l) / ``rpn_reg_l`` (1, A*4, h_l,
w_l). Then:

1. :func:`rpn_proposals`: (N, 4) proposals in resized pixels, as ``RPNHead.predict``;
2. :func:`run_roi_graph`: each box routed to its pyramid level (:func:`map_roi_levels`), a RoI
   graph run on (features, ``rois_l`` (n_l, 5)), its output rows put back in the boxes' order:
   ``cls_score`` (N, K+1) and ``bbox_pred`` (N, 4K or 4) for a bbox graph, ``mask_pred`` (N, K or
   1, M, M) for a mask graph;
3. :func:`rcnn_detections`: softmax, class-wise decoding, score threshold, class-wise NMS;
4. :func:`paste_masks`: the detections' mask probabilities pasted into the original image.

Cascade: each stage but the last refines the RoIs with its deltas for each RoI's best class; the
stages' class logits and their mask probabilities are averaged (``CascadeRoIHead.predict``).
"""
from typing import Dict, List, Tuple

import numpy as np

from .activations import sigmoid, softmax
from .boxes import best_detections, decode_boxes, no_detections, to_original
from .dense import level_predictions


def rpn_proposals(cls_list: List[np.ndarray], reg_list: List[np.ndarray], rpn: dict,
                  img_shape: Tuple[int, int]) -> np.ndarray:
    """RPNHead.predict (rescale=False) of one image: per level the top ``nms_pre`` anchors by
    sigmoid score, decoded and clipped to the resized image; boxes without area dropped, NMS
    within each level, the best ``max_per_img``. Returns (N, 4) boxes in resized pixels."""
    cfg = rpn['test_cfg']
    boxes, scores, levels = [], [], []
    for level, (cls, reg) in enumerate(zip(cls_list, reg_list)):
        anchors, score, deltas = level_predictions(cls[0], reg[0], rpn['base_anchors'][level],
                                                   rpn['strides'][level], 1)
        score = score.reshape(-1)
        if 0 < cfg['nms_pre'] < len(score):
            order = np.argsort(-score, kind='stable')[:cfg['nms_pre']]
            score, deltas, anchors = score[order], deltas[order], anchors[order]
        boxes.append(decode_boxes(anchors, deltas, rpn['coder'], img_shape))
        scores.append(score)
        levels.append(np.full(len(score), level, np.int64))
    boxes = np.concatenate(boxes).astype(np.float32)
    scores, levels = np.concatenate(scores).astype(np.float32), np.concatenate(levels)
    return boxes[best_detections(boxes, scores, levels, cfg)]


def map_roi_levels(boxes: np.ndarray, finest_scale: float, num_levels: int) -> np.ndarray:
    """SingleRoIExtractor.map_roi_levels: (N, 4) boxes -> (N,) int64 levels
    floor(log2(sqrt(area) / finest_scale + 1e-6)) clipped to [0, num_levels - 1], in float32 as
    mmdet computes it (a box on a level boundary must land where mmdet puts it)."""
    scale = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    levels = np.floor(np.log2(scale / np.float32(finest_scale) + np.float32(1e-6)))
    return np.clip(levels, 0, num_levels - 1).astype(np.int64)


def run_roi_graph(session, feats: List[np.ndarray], boxes: np.ndarray,
                  roi: dict) -> List[np.ndarray]:
    """Run a RoI-head graph on `boxes` (N, 4) of image 0: each box goes to its pyramid level
    (the ``rois_l`` inputs, (n_l, 5) with batch index 0), and the outputs' rows, which come
    level by level, are put back in the order of `boxes`."""
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
    """(N, K, 4) boxes decoded from the (N, 4) RoIs with each class's deltas (class-agnostic
    heads: the same box for every class), clipped to the resized image."""
    n = len(rois)
    per_roi = 1 if stage['reg_class_agnostic'] else num_classes
    boxes = decode_boxes(
        np.repeat(rois, per_roi, axis=0), bbox_pred.reshape(-1, 4), stage['coder'],
        img_shape).reshape(n, per_roi, 4)
    return np.broadcast_to(boxes, (n, num_classes, 4)).astype(np.float32)


def rcnn_detections(cls_score: np.ndarray, bbox_pred: np.ndarray, proposals: np.ndarray, rcnn: dict,
                    stage: dict, img_shape: Tuple[int, int]) -> Dict[str, np.ndarray]:
    """BBoxHead.predict_by_feat (rescale=False) + multiclass_nms: softmax scores, per-class boxes
    decoded from the proposals and clipped, (box, class) pairs with score > score_thr, class-wise
    NMS, the best ``max_per_img``. Boxes stay in resized pixels."""
    k, cfg = rcnn['num_classes'], rcnn['test_cfg']
    n = len(proposals)
    scores = softmax(cls_score)
    boxes = class_boxes(proposals, bbox_pred, stage, k, img_shape).reshape(-1, 4)
    flat, labels = scores[:, :k].reshape(-1), np.tile(np.arange(k, dtype=np.int64), n)
    valid = np.nonzero(flat > cfg['score_thr'])[0]
    boxes, flat, labels = boxes[valid], flat[valid], labels[valid]
    keep = best_detections(boxes, flat, labels, cfg)
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
    (box widened by a pixel, clipped to the image), so memory is N x box area, not N x image;
    bilinear sampling on a separable grid is the product Wy @ mask @ Wx^T."""
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
    """Main-graph outputs of one image (by name) and the RoI graphs' sessions (by the names in
    the metadata's ``graphs``) -> dict(bboxes (N, 4) in original pixels, scores, labels[, masks
    (N, H0, W0) bool]), as TwoStageDetector.predict."""
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
            if s < len(stages) - 1:  # Cascade: refine with the deltas of each RoI's best class
                best = cls_score[:, :-1].argmax(axis=1)
                rois = class_boxes(rois, bbox_pred, stage, k, info['img_shape'])
                rois = np.ascontiguousarray(rois[np.arange(len(rois)), best])
        cls_score = logits[0] if len(logits) == 1 else sum(logits) / np.float32(len(logits))
        result = rcnn_detections(cls_score, bbox_pred, rois, rcnn, stages[-1], info['img_shape'])
    else:
        result = no_detections()
    scaled = to_original(result['bboxes'], info)
    if 'mask_graph' in stages[0]:
        probs = np.zeros((0, 1, 1), np.float32)
        if len(scaled):
            per_stage = [
                sigmoid(roi_outputs(stage['mask_graph'], stage['mask_roi'], result['bboxes'])[0])
                for stage in stages
            ]
            merged = per_stage[0] if len(per_stage) == 1 else np.mean(per_stage, axis=0)
            channel = 0 if rcnn['class_agnostic_mask'] else result['labels']
            probs = merged[np.arange(len(merged)), channel]
        result['masks'] = paste_masks(probs, scaled, info['ori_shape'], rcnn['mask_thr_binary'])
    result['bboxes'] = scaled
    return result
