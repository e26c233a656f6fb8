"""Image classification (``cls``) without PyTorch: the exported graph returns the logits; here the
image is prepared as mmpretrain's test pipeline prepares it, and the logits become class
probabilities and the best classes, as ``ImageClassificationInferencer`` reports them.

Preprocessing (:func:`resize_and_crop`): mmpretrain's ``ResizeEdge`` (the short side to
``scale``, the other side ``int(scale * long / short)``, truncated) then mmcv's ``CenterCrop``
(offsets ``int(round((side - crop) / 2))``, Python's rounding). mmpretrain resizes with PIL when
the config says ``backend='pillow'`` (the ImageNet configs: bicubic); PIL's filters are used here
too when PIL is installed, else cv2's, whose bicubic differs from PIL's by a few grey levels
(PIL smooths when it shrinks). The metadata's ``resize`` says which: dict(type='resize_edge',
scale, edge, interpolation, backend) and ``crop`` (h, w).
"""
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

_CV2_FILTERS = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4
}


def edge_size(h: int, w: int, scale: int, edge: str = 'short') -> Tuple[int, int]:
    """(h, w) after ResizeEdge: the `edge` side ('short', 'long', 'height' or 'width') becomes
    `scale`, the other keeps the aspect ratio, truncated."""
    resize_width = (edge == 'short' and w < h) or (edge == 'long' and w > h) or edge == 'width'
    if resize_width:
        return int(scale * h / w), scale
    return scale, int(scale * w / h)


def _resize(image: np.ndarray, size: Tuple[int, int], interpolation: str,
            backend: str) -> np.ndarray:
    h, w = size
    if backend == 'pillow':
        try:
            from PIL import Image  # optional: the same filter as mmpretrain when installed
        except ImportError:
            pass
        else:
            resample = getattr(Image, 'Resampling', Image)
            return np.asarray(
                Image.fromarray(image).resize((w, h), getattr(resample, interpolation.upper())))
    return cv2.resize(image, (w, h), interpolation=_CV2_FILTERS[interpolation])


def center_crop(image: np.ndarray, crop: Sequence[int]) -> np.ndarray:
    """mmcv's CenterCrop of (h, w) `crop` (no padding: a smaller image keeps its size)."""
    ch, cw = min(crop[0], image.shape[0]), min(crop[1], image.shape[1])
    y0 = max(0, int(round((image.shape[0] - ch) / 2.)))
    x0 = max(0, int(round((image.shape[1] - cw) / 2.)))
    return image[y0:y0 + ch, x0:x0 + cw]


def resize_and_crop(image: np.ndarray, meta: dict) -> np.ndarray:
    """A BGR uint8 image (H0, W0, 3) as the classifier's test pipeline makes it (h, w, 3)."""
    resize = meta['resize']
    if resize['type'] == 'resize_edge':
        size = edge_size(*image.shape[:2], resize['scale'], resize['edge'])
    else:  # 'resize': to a fixed (h, w), as mmcv's Resize without keep_ratio
        size = tuple(resize['scale'])
    image = _resize(image, size, resize['interpolation'], resize['backend'])
    return center_crop(image, meta['crop']) if meta.get('crop') else image


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis, computed stably (the largest logit subtracted)."""
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def top_k(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of the `k` best classes of a (K,) score vector, best first; ties in
    class order."""
    k = min(k, scores.shape[-1])
    labels = np.argsort(-scores, kind='stable')[:k]
    return labels.astype(np.int64), scores[labels]


def classification(logits: np.ndarray, k: int = 5) -> Dict[str, np.ndarray]:
    """A classifier's (K,) logits -> dict(probs (K,) float32 softmax, labels (k,) int64 and
    scores (k,) float32 of the `k` best classes, best first)."""
    probs = softmax(logits.astype(np.float64)).astype(np.float32)
    labels, scores = top_k(probs, k)
    return dict(probs=probs, labels=labels, scores=scores)
