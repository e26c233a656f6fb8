"""DETR: the padding mask the graph takes, and its outputs -> detections, as
``DETRHead.predict_by_feat`` with softmax scores.

Graph inputs: ``input`` (1, 3, H, W) and ``pad_mask`` (1, H, W) uint8, 1 on the padding (mmdet
builds the mask in Python from each image's size, which an exporter would freeze, so the
runtime fills it in). Outputs: ``cls_score`` (1, Q, K+1) logits of the last decoder layer and
``bbox_pred`` (1, Q, 4) normalised (cx, cy, w, h).
"""
from typing import Dict, Tuple

import numpy as np

from .activations import softmax
from .boxes import clip_to_image, to_original


def padding_mask(input_hw: Tuple[int, int], img_shape: Tuple[int, int]) -> np.ndarray:
    """(1, H, W) uint8: 0 on the resized image (top left), 1 on the padding around it."""
    mask = np.ones((1, *input_hw), np.uint8)
    mask[:, :img_shape[0], :img_shape[1]] = 0
    return mask


def detr_detections(cls_score: np.ndarray, bbox_pred: np.ndarray, meta: dict,
                    info: dict) -> Dict[str, np.ndarray]:
    """(Q, K+1) logits and (Q, 4) normalised (cx, cy, w, h) of one image -> the best
    ``max_per_img`` queries by their best non-background class, boxes scaled to the resized
    image, clipped, then rescaled to the original image."""
    probs = softmax(cls_score)[:, :-1]
    labels, scores = probs.argmax(axis=1), probs.max(axis=1)
    order = np.argsort(-scores, kind='stable')[:meta['max_per_img']]
    cxcy, wh = bbox_pred[order, :2], bbox_pred[order, 2:]
    boxes = np.concatenate([cxcy - 0.5 * wh, cxcy + 0.5 * wh], axis=1).astype(np.float32)
    h, w = info['img_shape']
    boxes = to_original(
        clip_to_image(boxes * np.asarray([w, h, w, h], np.float32), info['img_shape']), info)
    return dict(bboxes=boxes, scores=scores[order], labels=labels[order].astype(np.int64))
