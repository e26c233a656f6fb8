"""Run a model exported by :func:`mmpvt.deploy.export.export_model` with onnxruntime and numpy
only: no PyTorch, no mmdet/mmseg (this file imports neither, so it can be copied on its own).

The file's ``mmpvt`` metadata says how to prepare an image and read the outputs, reproducing
``model.predict`` of the mmdet/mmseg model that was exported:

* preprocessing: the config's keep-ratio ``Resize`` (mmcv's rule: scale = min(long / max side,
  short / min side), sides rounded with int(x * scale + 0.5), cv2 bilinear) or ``AlignResize``
  (then each side resized up to a multiple of its divisor); BGR -> RGB; (x - mean) / std; zero
  padding to ``pad_size_divisor`` at the bottom/right (after normalisation, as mmengine does);
* detection (RetinaNet): per level sigmoid scores, scores > score_thr, the top ``nms_pre``
  (score, anchor, class) entries, ``DeltaXYWHBBoxCoder`` decoding clipped to the resized image,
  rescaling to the original image, boxes without area dropped (``min_bbox_size`` 0), class-wise
  NMS (mmcv's ``batched_nms``: one greedy NMS on class-offset boxes), the best ``max_per_img``;
* segmentation: the graph already returns the class map at the original size.
"""
import json
import math
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
    if coder['clip_border']:
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, img_shape[1])
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, img_shape[0])
    return boxes


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


def detections(outputs: List[np.ndarray], meta: dict, info: dict) -> Dict[str, np.ndarray]:
    """Raw head outputs of one image -> dict(bboxes (N, 4) in original pixels, scores, labels)."""
    levels = len(meta['strides'])
    k, cfg = meta['num_classes'], meta['test_cfg']
    all_boxes, all_scores, all_labels = [], [], []
    for level in range(levels):
        cls, reg = outputs[level][0], outputs[levels + level][0]
        base = np.asarray(meta['base_anchors'][level], np.float32)
        anchors = grid_anchors(base, meta['strides'][level], cls.shape[-2:])
        scores = 1.0 / (1.0 + np.exp(-cls.transpose(1, 2, 0).reshape(-1, k)))
        deltas = reg.transpose(1, 2, 0).reshape(-1, 4)
        flat = scores.reshape(-1)
        valid = np.nonzero(flat > cfg['score_thr'])[0]
        order = np.argsort(-flat[valid], kind='stable')
        if cfg['nms_pre'] > 0:
            order = order[:cfg['nms_pre']]
        picked = valid[order]
        anchor_idx, labels = picked // k, picked % k
        all_boxes.append(decode_boxes(anchors[anchor_idx], deltas[anchor_idx], meta['coder'],
                                      info['img_shape']))
        all_scores.append(flat[picked])
        all_labels.append(labels)
    boxes = np.concatenate(all_boxes).astype(np.float32)
    scores = np.concatenate(all_scores).astype(np.float32)
    labels = np.concatenate(all_labels).astype(np.int64)
    sx, sy = info['scale_factor']
    boxes = boxes / np.asarray([sx, sy, sx, sy], np.float32)
    if cfg['min_bbox_size'] >= 0:
        wh_ok = ((boxes[:, 2] - boxes[:, 0]) > cfg['min_bbox_size']) & \
                ((boxes[:, 3] - boxes[:, 1]) > cfg['min_bbox_size'])
        boxes, scores, labels = boxes[wh_ok], scores[wh_ok], labels[wh_ok]
    if len(boxes):
        offsets = labels.astype(np.float32) * (boxes.max() + 1)
        keep = nms(boxes + offsets[:, None], scores, cfg['iou_threshold'])[:cfg['max_per_img']]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    return dict(bboxes=boxes, scores=scores, labels=labels)


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

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """BGR uint8 image -> dict(bboxes, scores, labels) or dict(seg_map (H0, W0))."""
        x, info = preprocess(image, self.meta)
        if self.meta['task'] == 'seg':
            size_ref = np.zeros((1, *info['ori_shape']), np.uint8)
            seg = self.session.run(None, {'input': x, 'size_ref': size_ref})[0]
            return dict(seg_map=seg[0])
        return detections(self.session.run(None, {'input': x}), self.meta, info)


def draw(image: np.ndarray, result: Dict[str, np.ndarray], classes: Sequence[str] = (),
         score_thr: float = 0.3) -> np.ndarray:
    """A copy of `image` with boxes (score >= score_thr) and labels, or the class map blended."""
    out = image.copy()
    rng = np.random.RandomState(0)
    colours = rng.randint(40, 255, size=(max(len(classes), 256), 3))
    if 'seg_map' in result:
        overlay = colours[result['seg_map'] % len(colours)].astype(np.uint8)
        return cv2.addWeighted(out, 0.5, overlay, 0.5, 0)
    for box, score, label in zip(result['bboxes'], result['scores'], result['labels']):
        if score < score_thr:
            continue
        colour = tuple(int(c) for c in colours[label])
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        name = classes[label] if label < len(classes) else str(label)
        cv2.putText(out, f'{name} {score:.2f}', (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.3, colour, 1, cv2.LINE_AA)
    return out
