"""Single-stage anchor heads (RetinaNet, ATSS, GFL): the graph's raw per-level outputs ->
detections, as the heads' ``predict_by_feat`` + ``_bbox_post_process`` compute them.

Graph outputs of one image (batch index 0 is read), per level l of stride s_l:
``cls_l`` (1, A*K, h_l, w_l) logits, ``reg_l`` (1, A*4, h_l, w_l) box deltas or, for GFL,
distances in pixels, and for ATSS ``ctr_l`` (1, A, h_l, w_l) centerness logits.
Result: ``bboxes`` (N, 4) float32 in original-image pixels, ``scores`` (N,) float32, ``labels``
(N,) int64, best first, N <= ``max_per_img``.
"""
from typing import Dict, Tuple

import numpy as np

from .activations import sigmoid
from .boxes import best_detections, decode, grid_anchors, to_original


def level_predictions(cls: np.ndarray, reg: np.ndarray, base_anchors, stride,
                      num_classes: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level of one image, (A*K, h, w) logits and (A*4, h, w) regression -> anchors
    (h*w*A, 4), sigmoid scores (h*w*A, K) and regression (h*w*A, 4), rows in the anchors'
    order. Shared with the RPN (K = 1)."""
    anchors = grid_anchors(np.asarray(base_anchors, np.float32), stride, cls.shape[-2:])
    scores = sigmoid(cls.transpose(1, 2, 0).reshape(-1, num_classes))
    return anchors, scores, reg.transpose(1, 2, 0).reshape(-1, 4)


def dense_detections(outputs: Dict[str, np.ndarray], meta: dict,
                     info: dict) -> Dict[str, np.ndarray]:
    """Per level: (anchor, class) pairs with score > score_thr, the best ``nms_pre`` of them,
    decoded and clipped to the resized image; then all levels together: rescaled to the
    original image, scores times sigmoid(centerness) for ATSS, boxes without area dropped,
    class-wise NMS, the best ``max_per_img``."""
    k, cfg, coder = meta['num_classes'], meta['test_cfg'], meta['coder']
    all_boxes, all_scores, all_labels, all_factors = [], [], [], []
    for level, stride in enumerate(meta['strides']):
        anchors, scores, reg = level_predictions(outputs[f'cls_{level}'][0],
                                                 outputs[f'reg_{level}'][0],
                                                 meta['base_anchors'][level], stride, k)
        flat = scores.reshape(-1)
        valid = np.nonzero(flat > cfg['score_thr'])[0]
        order = np.argsort(-flat[valid], kind='stable')
        if cfg['nms_pre'] > 0:
            order = order[:cfg['nms_pre']]
        picked = valid[order]
        anchor_idx, labels = picked // k, picked % k
        all_boxes.append(decode(anchors[anchor_idx], reg[anchor_idx], coder, info['img_shape']))
        all_scores.append(flat[picked])
        all_labels.append(labels)
        if meta.get('score_factors'):  # ATSS: the score is cls x sigmoid(centerness)
            ctr = outputs[f'ctr_{level}'][0].transpose(1, 2, 0).reshape(-1)
            all_factors.append(sigmoid(ctr[anchor_idx]))
    boxes = to_original(np.concatenate(all_boxes).astype(np.float32), info)
    scores = np.concatenate(all_scores).astype(np.float32)
    labels = np.concatenate(all_labels).astype(np.int64)
    if all_factors:
        scores = scores * np.concatenate(all_factors).astype(np.float32)
    keep = best_detections(boxes, scores, labels, cfg)
    return dict(bboxes=boxes[keep], scores=scores[keep], labels=labels[keep])
