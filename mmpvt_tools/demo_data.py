"""A small, deterministic synthetic dataset for the CPU demo and the tests: coloured shapes.

One set of images, two annotation formats side by side, ADE20K's folder layout::

    <root>/images/{training,validation}/000000.png        RGB images (<= 320 px)
    <root>/annotations/{training,validation}/000000.png   semantic masks: 0 background, 1..4 class
    <root>/annotations/instances_{training,validation}.json   COCO boxes + polygon masks
    <root>/meta.json                                      the generator's parameters
    <root>/crops/{training,validation}/000000_0.png       one crop per shape (classification)
    <root>/crops/{training,validation}.txt                mmpretrain annotation lists

Each image has a noisy gradient background and 1..`max_objects` shapes (circle, square,
triangle, star), of varied size, colour and texture (solid, stripes, checker, speckle), which may
overlap: annotations describe the *visible* part of each shape. The same parameters give
byte-identical files. The tree is built in a temporary sibling and renamed into place, so it is
either complete or absent.

The classification split (:func:`write_crops`) is cut from these images: a square around each
annotated shape, labelled with its class (0..3 in :data:`CLASSES` order), listed as mmpretrain's
CustomDataset reads an annotation file (``<split>/<name> <label>`` per line). It is written
with the rest by :func:`generate`, and added to a dataset generated before it existed.
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from mmpvt.fileio import atomic_dir

CLASSES = ('circle', 'square', 'triangle', 'star')
# A base hue per class (OpenCV hue, 0-179) jittered per object: colour is a cue, shape decides.
_CLASS_HUES = (0, 60, 110, 25)
PALETTE = [(0, 0, 0), (220, 20, 60), (0, 160, 60), (30, 80, 220), (250, 170, 30)]
SPLITS = ('training', 'validation')


def _shape_mask(cls: int, size: int, rng: np.random.RandomState) -> np.ndarray:
    """A binary (size x size) mask of one shape, randomly rotated."""
    mask = np.zeros((size, size), np.uint8)
    c = (size - 1) / 2
    r = size / 2 - 1
    angle = rng.uniform(0, 2 * math.pi)
    if cls == 0:
        cv2.circle(mask, (int(round(c)), int(round(c))), int(r), 1, -1)
        return mask
    if cls == 1:
        n, radii = 4, [r] * 4
    elif cls == 2:
        n, radii = 3, [r] * 3
    else:
        n, radii = 10, [r if i % 2 == 0 else r * 0.45 for i in range(10)]
    pts = [(c + rad * math.cos(angle + 2 * math.pi * i / n),
            c + rad * math.sin(angle + 2 * math.pi * i / n)) for i, rad in enumerate(radii)]
    cv2.fillPoly(mask, [np.round(np.array(pts)).astype(np.int32)], 1)
    return mask


def _texture(size: int, colour: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """A (size, size, 3) uint8 fill: solid, stripes, checker or speckle around `colour`."""
    kind = rng.randint(4)
    base = np.broadcast_to(colour.astype(np.float32), (size, size, 3)).copy()
    yy, xx = np.mgrid[:size, :size]
    if kind == 1:
        period = rng.randint(4, 10)
        base[((xx + yy) // period) % 2 == 0] *= 0.6
    elif kind == 2:
        period = rng.randint(4, 10)
        base[((xx // period) + (yy // period)) % 2 == 0] *= 0.6
    elif kind == 3:
        base *= rng.uniform(0.7, 1.0, size=(size, size, 1))
    return np.clip(base, 0, 255).astype(np.uint8)


def _colour(cls: int, rng: np.random.RandomState) -> np.ndarray:
    hue = (_CLASS_HUES[cls] + rng.randint(-8, 9)) % 180
    hsv = np.array([[[hue, rng.randint(150, 256), rng.randint(150, 256)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]


def _background(h: int, w: int, rng: np.random.RandomState) -> np.ndarray:
    top, bottom = rng.randint(40, 200, size=3), rng.randint(40, 200, size=3)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = top * (1 - t) + bottom * t + rng.normal(0, 12, size=(h, w, 3))
    return np.clip(np.broadcast_to(img, (h, w, 3)), 0, 255).astype(np.uint8)


def _polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for contour in contours:
        if len(contour) >= 3 and cv2.contourArea(contour) >= 4:
            polys.append([float(v) for v in contour.reshape(-1)])
    return polys


def render_image(index: int, seed: int, img_size: Tuple[int, int], max_objects: int,
                 size_range: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, List[dict]]:
    """(BGR image, semantic mask, instances) of image `index`; a pure function of its arguments.

    instances: dicts with category (0-based), visible binary mask.
    """
    rng = np.random.RandomState([seed, index])
    h, w = img_size
    img = _background(h, w, rng)
    owner = np.full((h, w), -1, np.int32)  # which object is visible at each pixel
    objects: List[dict] = []
    for _ in range(rng.randint(1, max_objects + 1)):
        for _try in range(20):
            cls = rng.randint(len(CLASSES))
            size = rng.randint(size_range[0], min(size_range[1], h, w) + 1)
            y, x = rng.randint(0, h - size + 1), rng.randint(0, w - size + 1)
            shape = _shape_mask(cls, size, rng).astype(bool)
            window = owner[y:y + size, x:x + size]
            # keep every earlier object at least half visible
            covered = [np.count_nonzero(window[shape] == k) for k in range(len(objects))]
            if all(c <= 0.5 * np.count_nonzero(owner == k) for k, c in enumerate(covered)):
                break
        else:
            continue
        fill = _texture(size, _colour(cls, rng), rng)
        img[y:y + size, x:x + size][shape] = fill[shape]
        window[shape] = len(objects)
        objects.append(dict(category=cls))
    semantic = np.zeros((h, w), np.uint8)
    for k, obj in enumerate(objects):
        obj['mask'] = (owner == k).astype(np.uint8)
        semantic[owner == k] = obj['category'] + 1
    img = np.clip(img.astype(np.int16) + rng.randint(-6, 7, size=img.shape), 0, 255)
    return img.astype(np.uint8), semantic, objects


def _write_split(root: str, split: str, count: int, first_index: int, params: dict) -> None:
    images, annotations = [], []
    img_dir = osp.join(root, 'images', split)
    seg_dir = osp.join(root, 'annotations', split)
    os.makedirs(img_dir)
    os.makedirs(seg_dir)
    for i in range(count):
        img, semantic, objects = render_image(first_index + i, params['seed'],
                                              tuple(params['img_size']), params['max_objects'],
                                              tuple(params['size_range']))
        name = f'{first_index + i:06d}.png'
        cv2.imwrite(osp.join(img_dir, name), img)
        cv2.imwrite(osp.join(seg_dir, name), semantic)
        image_id = first_index + i
        images.append(dict(id=image_id, file_name=name, height=img.shape[0], width=img.shape[1]))
        for obj in objects:
            ys, xs = np.nonzero(obj['mask'])
            polys = _polygons(obj['mask'])
            if len(xs) == 0 or not polys:
                continue
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            annotations.append(
                dict(
                    id=len(annotations) + 1, image_id=image_id, category_id=obj['category'] + 1,
                    bbox=[float(x0), float(y0),
                          float(x1 - x0),
                          float(y1 - y0)], area=float(len(xs)), segmentation=polys, iscrowd=0))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)])
    with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f, sort_keys=True)


# generate()'s defaults: the dataset `make demo` and the demo configs expect.
DEFAULTS = dict(num_train=300, num_val=60, img_size=(256, 256), max_objects=4, size_range=(32, 112),
                seed=0)


def generate(root: str = 'data/shapes', num_train: int = DEFAULTS['num_train'],
             num_val: int = DEFAULTS['num_val'], img_size: Tuple[int, int] = DEFAULTS['img_size'],
             max_objects: int = DEFAULTS['max_objects'],
             size_range: Tuple[int, int] = DEFAULTS['size_range'],
             seed: int = DEFAULTS['seed']) -> Dict[str, object]:
    """Write the dataset to `root` unless it is already there with the same parameters.

    Returns the parameters (as in ``meta.json``). Raises FileExistsError if `root` holds something
    else (another parameter set, or not a dataset of ours): nothing is overwritten.
    """
    if max(img_size) > 320 or min(img_size) < 32:
        raise ValueError(f'img_size must be within 32..320 px, got {img_size}')
    params = dict(
        classes=list(CLASSES), img_size=list(img_size), max_objects=max_objects,
        num_train=num_train, num_val=num_val, seed=seed, size_range=list(size_range), version=1)
    meta_path = osp.join(root, 'meta.json')
    if osp.exists(root):
        existing: Optional[dict] = None
        if osp.isfile(meta_path):
            with open(meta_path) as f:
                existing = json.load(f)
        if existing == params:
            return params
        raise FileExistsError(f'{root} exists but was not generated with these parameters '
                              f'({params}); remove it or choose another directory')
    with atomic_dir(root) as tmp:
        _write_split(tmp, 'training', num_train, 0, params)
        _write_split(tmp, 'validation', num_val, num_train, params)
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(params, f, sort_keys=True, indent=1)
        with atomic_dir(osp.join(tmp, 'crops')) as crops:
            for split in SPLITS:
                _write_crops(tmp, crops, split)
    return params


# A crop is the shape's box grown by this factor (some background around it), made square.
CROP_CONTEXT = 1.25
MIN_CROP = 16  # px: smaller crops (heavily occluded shapes) are left out


def crop_box(bbox: List[float], img_h: int, img_w: int) -> Tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the square crop around a COCO box (x, y, w, h), clipped to the image."""
    x, y, w, h = bbox
    side = max(w, h) * CROP_CONTEXT
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(max(cx - side / 2, 0))), int(round(max(cy - side / 2, 0)))
    x1, y1 = int(round(min(cx + side / 2, img_w))), int(round(min(cy + side / 2, img_h)))
    return x0, y0, x1, y1


def _write_crops(root: str, out: str, split: str) -> int:
    """Crops of `split`'s annotated shapes into ``out/<split>/`` and ``out/<split>.txt``."""
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        coco = json.load(f)
    images = {image['id']: image for image in coco['images']}
    os.makedirs(osp.join(out, split))
    lines, count = [], {}
    for ann in sorted(coco['annotations'], key=lambda a: a['id']):
        image = images[ann['image_id']]
        x0, y0, x1, y1 = crop_box(ann['bbox'], image['height'], image['width'])
        if min(x1 - x0, y1 - y0) < MIN_CROP:
            continue
        img = cv2.imread(osp.join(root, 'images', split, image['file_name']))
        stem = osp.splitext(image['file_name'])[0]
        k = count[stem] = count.get(stem, -1) + 1
        name = f'{stem}_{k}.png'
        cv2.imwrite(osp.join(out, split, name), img[y0:y1, x0:x1])
        lines.append(f'{split}/{name} {ann["category_id"] - 1}\n')
    with open(osp.join(out, f'{split}.txt'), 'w') as f:
        f.writelines(lines)
    return len(lines)


def write_crops(root: str) -> Dict[str, int]:
    """The classification split of the dataset in `root` (``root/crops``), unless it is there.

    Returns {split: number of crops}. Written into a temporary sibling and renamed into place.
    """
    out = osp.join(root, 'crops')
    if not osp.isdir(out):
        with atomic_dir(out) as tmp:
            for split in SPLITS:
                _write_crops(root, tmp, split)
    counts = {}
    for split in SPLITS:
        with open(osp.join(out, f'{split}.txt')) as f:
            counts[split] = sum(1 for line in f if line.strip())
    return counts


def read_meta(root: str) -> Optional[dict]:
    """The parameters of the dataset generated in `root` (its ``meta.json``), or None."""
    meta_path = osp.join(root, 'meta.json')
    if not osp.isfile(meta_path):
        return None
    with open(meta_path) as f:
        return json.load(f)


def ensure_dataset(root: str = 'data/shapes') -> dict:
    """Use the dataset in `root` if one was generated there (any parameters), else make the default.
    """
    meta = read_meta(root)
    if meta is None:
        return generate(root)
    write_crops(root)  # a dataset generated before the classification split existed
    return meta
