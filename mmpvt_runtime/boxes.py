"""Box maths of the post-processing, as mmdet / mmcv compute it, in float32 numpy.

Boxes are (N, 4) arrays of (x1, y1, x2, y2) pixels. Anchors per level (:func:`grid_anchors`),
decoding of regression outputs against them (:func:`decode`: ``DeltaXYWHBBoxCoder`` deltas or
GFL's distances), clipping to the image, rescaling to the original image, mmcv's greedy NMS and
its class-wise ``batched_nms``, and :func:`best_detections`, the filter + NMS + top-k tail every
detector's test path ends with.
"""
import math
from typing import Dict, Sequence, Tuple

import numpy as np


def grid_anchors(base: np.ndarray, stride: Sequence[float], hw: Tuple[int, int]) -> np.ndarray:
    """(A, 4) base anchors of one level -> (h*w*A, 4) anchors, location-major (row by row, the
    A anchors of a location together), as mmdet's AnchorGenerator orders them."""
    xs = np.arange(hw[1], dtype=np.float32) * stride[0]
    ys = np.arange(hw[0], dtype=np.float32) * stride[1]
    xx = np.tile(xs, hw[0])
    yy = np.repeat(ys, hw[1])
    shifts = np.stack([xx, yy, xx, yy], axis=1)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


def clip_to_image(boxes: np.ndarray, img_shape: Tuple[int, int]) -> np.ndarray:
    """(N, 4) boxes clipped in place to [0, W] x [0, H]; returned for chaining."""
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, img_shape[1])
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, img_shape[0])
    return boxes


def to_original(boxes: np.ndarray, info: dict) -> np.ndarray:
    """(N, 4) boxes in resized-image pixels -> original-image pixels (mmdet's rescale: divided
    by the resize's scale factor)."""
    sx, sy = info['scale_factor']
    return boxes / np.asarray([sx, sy, sx, sy], np.float32)


def has_area(boxes: np.ndarray, min_size: float) -> np.ndarray:
    """mmdet's min_bbox_size filter: (N,) bool, width and height both > min_size."""
    return ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)


def decode_boxes(anchors: np.ndarray, deltas: np.ndarray, coder: dict,
                 img_shape: Tuple[int, int]) -> np.ndarray:
    """DeltaXYWHBBoxCoder.decode (no centre clamp): (N, 4) anchors and (N, 4) normalised
    (dx, dy, dw, dh) deltas -> (N, 4) boxes, clipped to `img_shape` if the coder clips. The
    width/height deltas are clamped to |log(wh_ratio_clip)| first, as mmdet does, so exp cannot
    blow up."""
    d = deltas * np.asarray(coder['stds'], np.float32) + np.asarray(coder['means'], np.float32)
    pxy = (anchors[:, :2] + anchors[:, 2:]) * 0.5
    pwh = anchors[:, 2:] - anchors[:, :2]
    max_ratio = np.float32(abs(math.log(coder['wh_ratio_clip'])))
    gxy = pxy + pwh * d[:, :2]
    gwh = pwh * np.exp(np.clip(d[:, 2:], -max_ratio, max_ratio))
    boxes = np.concatenate([gxy - gwh * 0.5, gxy + gwh * 0.5], axis=1)
    return clip_to_image(boxes, img_shape) if coder['clip_border'] else boxes


def decode_distances(anchors: np.ndarray, dist: np.ndarray, coder: dict,
                     img_shape: Tuple[int, int]) -> np.ndarray:
    """GFL: DistancePointBBoxCoder.decode from the anchor centres; `dist` (N, 4) holds (left,
    top, right, bottom) in pixels (the graph already integrated GFL's distributions)."""
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    boxes = np.concatenate([centres - dist[:, :2], centres + dist[:, 2:]], axis=1)
    return clip_to_image(boxes, img_shape) if coder['clip_border'] else boxes


# The metadata's coder ``type`` -> its decoder; files written before the type existed hold
# delta coders only.
DECODERS = {'delta': decode_boxes, 'distance': decode_distances}


def decode(anchors: np.ndarray, reg: np.ndarray, coder: dict, img_shape: Tuple[int,
                                                                               int]) -> np.ndarray:
    """(N, 4) anchors and (N, 4) regression outputs -> (N, 4) boxes, by the coder's type."""
    return DECODERS[coder.get('type', 'delta')](anchors, reg, coder, img_shape)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """mmcv's greedy NMS (areas without the +1, a box suppressed when its IoU with a kept one
    is > iou_threshold): indices of the kept boxes, best score first (ties: lower index first,
    a stable sort)."""
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


def batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_threshold: float,
                split_thr: int = 10000) -> np.ndarray:
    """mmcv's ``batched_nms``: NMS within each ``idxs`` group; kept indices by score. Below
    split_thr boxes it is one NMS on boxes offset by group (idx * (max coordinate + 1)), so that
    boxes of different groups never overlap; above it one NMS per group, as mmcv does (the two
    can differ in the last bits of an IoU, so which one runs matters for exact parity)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if len(boxes) < split_thr:
        offsets = idxs.astype(np.float32) * (boxes.max() + np.float32(1))
        return nms(boxes + offsets[:, None], scores, iou_threshold)
    kept = [np.nonzero(idxs == i)[0] for i in np.unique(idxs)]
    kept = np.concatenate(
        [members[nms(boxes[members], scores[members], iou_threshold)] for members in kept])
    return kept[np.argsort(-scores[kept], kind='stable')]


def best_detections(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray,
                    cfg: dict) -> np.ndarray:
    """The tail of mmdet's test paths (dense heads, the RPN, the R-CNN): boxes without area
    dropped if ``cfg['min_bbox_size']`` >= 0, NMS within each group (class or, for the RPN,
    pyramid level) at ``cfg['iou_threshold']``, the best ``cfg['max_per_img']``. Returns indices
    into the inputs, best first."""
    candidates = np.arange(len(boxes))
    if cfg.get('min_bbox_size', -1) >= 0:
        candidates = np.nonzero(has_area(boxes, cfg['min_bbox_size']))[0]
    keep = batched_nms(boxes[candidates], scores[candidates], groups[candidates],
                       cfg['iou_threshold'])
    return candidates[keep[:cfg['max_per_img']]]


def no_detections() -> Dict[str, np.ndarray]:
    """An empty result with the dtypes of a full one."""
    return dict(
        bboxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
        labels=np.zeros(0, np.int64))
