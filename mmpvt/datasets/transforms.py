"""Data transforms the authors' recipes need and OpenMMLab 2.x lacks."""
import math
from typing import Optional, Tuple, Union

import mmcv
from mmcv.transforms import Resize

from ..registry import TRANSFORMS


@TRANSFORMS.register_module()
class AlignResize(Resize):
    """Resize keeping the aspect ratio, then *resize* (not pad) each side up to a multiple of
    `size_divisor`: the test-time resize of the authors' Semantic FPN recipes (PVT v1 and PVTv2,
    mmseg 0.13's ``AlignResize``), which mmseg 1.x does not have.

    Step 1 is mmcv's ``Resize`` with ``keep_ratio=True``: rescale so the image fits `scale`
    (long side <= max(scale), short side <= min(scale)). Step 2 resizes the image (bilinear) and
    every map in ``seg_fields`` (nearest) to (ceil(h / d) * d, ceil(w / d) * d), so the backbone
    sees a size that every stride and reduction ratio divides. ``img_shape`` and ``scale_factor``
    describe
    the final size, so mmseg resizes predictions back to the original image exactly.

    Args:
        scale: (long, short) target, e.g. (2048, 512). scale_factor: as in ``Resize`` (one of the
            two). size_divisor: d, default 32. Other arguments as mmcv's ``Resize``.

    Example: a 375 x 500 (h x w) image with scale (2048, 512) is rescaled by 512 / 375 to
    512 x 683, then resized to 512 x 704.
    """

    def __init__(self, scale: Optional[Union[int, Tuple[int, int]]] = None,
                 scale_factor: Optional[Union[float, Tuple[float, float]]] = None,
                 keep_ratio: bool = True, size_divisor: int = 32, clip_object_border: bool = True,
                 backend: str = 'cv2', interpolation: str = 'bilinear') -> None:
        if not keep_ratio:
            raise ValueError('AlignResize rescales keeping the aspect ratio; keep_ratio=False '
                             'makes no sense with it (use Resize)')
        if not isinstance(size_divisor, int) or size_divisor < 1:
            raise ValueError(f'AlignResize: size_divisor must be a positive int, got '
                             f'{size_divisor!r}')
        super().__init__(scale=scale, scale_factor=scale_factor, keep_ratio=True,
                         clip_object_border=clip_object_border, backend=backend,
                         interpolation=interpolation)
        self.size_divisor = size_divisor

    def transform(self, results: dict) -> dict:
        ori_h, ori_w = results['img'].shape[:2]
        results = super().transform(results)
        h, w = results['img'].shape[:2]
        d = self.size_divisor
        aligned_h, aligned_w = math.ceil(h / d) * d, math.ceil(w / d) * d
        if (aligned_h, aligned_w) != (h, w):
            results['img'] = mmcv.imresize(results['img'], (aligned_w, aligned_h),
                                           interpolation=self.interpolation, backend=self.backend)
            for key in results.get('seg_fields', []):
                if results.get(key) is not None:
                    results[key] = mmcv.imresize(results[key], (aligned_w, aligned_h),
                                                 interpolation='nearest', backend=self.backend)
            results['img_shape'] = (aligned_h, aligned_w)
            results['scale_factor'] = (aligned_w / ori_w, aligned_h / ori_h)
        return results

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', size_divisor={self.size_divisor})'
