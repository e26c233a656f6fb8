"""An image as the exported graph wants it, following the file's metadata (``resize``,
``mean``, ``std``, ``bgr_to_rgb``, ``pad_size_divisor``), the way mmdet's / mmseg's test
pipeline and data preprocessor prepare it.

:func:`preprocess`: a BGR uint8 image (H0, W0, 3) -> the graph input (1, 3, H, W) float32 and
the image info the post-processing needs: ``ori_shape`` (H0, W0), ``img_shape`` (h, w) after
resizing (before padding; h <= H, w <= W) and ``scale_factor`` (w / W0, h / H0). Classifiers
(task ``cls``) are resized and centre-cropped as mmpretrain's test pipeline does
(:func:`.classify.resize_and_crop`), not padded.
"""
import math
from typing import Sequence, Tuple

import cv2
import numpy as np

from .classify import resize_and_crop


def rescaled_size(h: int, w: int, scale: Sequence[int]) -> Tuple[int, int]:
    """mmcv's keep-ratio rule: the largest factor that fits the long side into max(scale) and
    the short side into min(scale); sides rounded with int(x * factor + 0.5)."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * factor + 0.5), int(w * factor + 0.5)


def _round_up(size: int, divisor: int) -> int:
    return math.ceil(size / divisor) * divisor


def preprocess(image: np.ndarray, meta: dict) -> Tuple[np.ndarray, dict]:
    """BGR uint8 (H0, W0, 3) -> ((1, 3, H, W) float32 input, image info): keep-ratio resize
    (cv2 bilinear), for ``AlignResize`` a second resize of each side up to a multiple of its
    divisor, BGR -> RGB if asked, (x - mean) / std, then zero padding at the bottom and right to
    a multiple of ``pad_size_divisor`` (after normalising, as mmengine pads, so the padding is
    0 and not -mean / std)."""
    h0, w0 = image.shape[:2]
    resize = meta['resize']
    if meta['task'] == 'cls':  # mmpretrain's test pipeline: resize an edge, centre crop
        img = resize_and_crop(image, meta)
        h, w = img.shape[:2]
        return _normalised(img, meta), dict(ori_shape=(h0, w0), img_shape=(h, w))
    h, w = rescaled_size(h0, w0, resize['scale'])
    img = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if resize['type'] == 'align':
        d = resize['size_divisor']
        h, w = _round_up(h, d), _round_up(w, d)
        if (h, w) != img.shape[:2]:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    x = _normalised(img, meta)
    d = meta['pad_size_divisor']
    x = np.pad(x, ((0, 0), (0, 0), (0, _round_up(h, d) - h), (0, _round_up(w, d) - w)))
    info = dict(ori_shape=(h0, w0), img_shape=(h, w), scale_factor=(w / w0, h / h0))
    return x, info


def _normalised(img: np.ndarray, meta: dict) -> np.ndarray:
    """(h, w, 3) uint8 -> (1, 3, h, w) float32: BGR -> RGB if asked, (x - mean) / std."""
    x = img.astype(np.float32)
    if meta['bgr_to_rgb']:
        x = x[..., ::-1]
    x = (x - np.asarray(meta['mean'], np.float32)) / np.asarray(meta['std'], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
