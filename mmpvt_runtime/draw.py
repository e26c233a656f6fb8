"""Predictions drawn on the image as ``tools/image_demo.py`` draws them (mmdet's
``DetLocalVisualizer``, mmseg's ``SegLocalVisualizer``), with cv2 instead of matplotlib.

Detections (:func:`draw_detections`): those with score > score_thr; one colour per class from
the palette stored at export (the dataset's, resolved as the inferencers resolve it); box lines
3 points wide (capped for small images as mmengine caps them) and masks (colour jittered per
instance, white outlines) blended at alpha 0.8; label text ``'{class}: {round(score * 100, 1)}'``
in light grey on a black box at the box's top-left corner, 13 points for boxes of at least
30000 pixels and 6 points below. Sizes in points become pixels at mmengine's 100 dpi. Measured
against DetLocalVisualizer on single boxes: the same line pixels and colours (matplotlib adds
antialiased half pixels); the text's font (cv2's Hershey, not DejaVu Sans) is the visible
difference.

Segmentation (:func:`draw_segmentation`): mmseg's drawing, which is cv2 already, reproduced
pixel for pixel: the class colours blended at opacity 0.8, each class's name on a box of its
colour.

Classification (:func:`draw_classification`): the best class and its probability written at
the top-left, as mmpretrain's visualizer writes its prediction line ('{label} {class}, {score}'),
light grey on a black box.

Images are BGR uint8 (H, W, 3) in and out; palettes are RGB, as the datasets write them.
"""
import math
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

# DetLocalVisualizer's defaults
ALPHA = 0.8
LINE_WIDTH = 3  # points
TEXT_COLOUR = (200, 200, 200)
TEXT_BOX_ALPHA = 0.8
TEXT_PAD = 0.7  # points (matplotlib reads a text bbox's pad in points)
MASK_EDGE_WIDTH = 2  # points: draw_polygons' default, which mmdet's mask outlines use
# mmengine's figure: 100 dots per inch, 72 points per inch
PIXELS_PER_POINT = 100 / 72
# cv2's FONT_HERSHEY_SIMPLEX at scale 1 writes labels as wide, and capitals as tall, as
# DejaVu Sans (matplotlib's font) with an em of 34 px (measured on 'circle: 18.7' at 6 points)
HERSHEY_EM_PX = 34.0
FONT = cv2.FONT_HERSHEY_SIMPLEX
SEG_OPACITY = 0.8  # MMSegInferencer.visualize's default


def random_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """mmdet's palette when a dataset has none: seed 42, one random RGB triple per class (a
    class keeps its colour whatever num_classes is: the generator fills rows in order)."""
    rng = np.random.RandomState(42)
    return [tuple(int(v) for v in c) for c in rng.randint(0, 256, size=(num_classes, 3))]


def class_colours(palette: Sequence, num_classes: int) -> List[Tuple[int, int, int]]:
    """RGB colour per class 0..num_classes-1: the palette's, and for classes past its end
    (or every class if it is empty) the random palette's."""
    colours = [tuple(int(v) for v in c) for c in palette]
    if len(colours) < num_classes:
        colours += random_palette(num_classes)[len(colours):]
    return colours


def label_text(label: int, score: float, classes: Sequence[str]) -> str:
    """mmdet's label: ``'circle: 87.5'``; ``'class 3: 87.5'`` where no name is known."""
    name = classes[label] if label < len(classes) else f'class {label}'
    return f'{name}: {round(float(score) * 100, 1)}'


def _bgr(rgb) -> Tuple[int, int, int]:
    return tuple(int(v) for v in rgb[::-1])


def _thickness(points: float) -> int:
    """cv2 thickness for a line `points` wide at mmengine's resolution: cv2 draws a line of
    thickness t > 1 t + 1 pixels wide (measured), so one less than the pixel width."""
    width = int(round(points * PIXELS_PER_POINT))
    return 1 if width <= 2 else width - 1


def _blend(base: np.ndarray, layer: np.ndarray, alpha: float) -> np.ndarray:
    """`layer` over `base` at `alpha`; where `layer` equals `base` nothing changes."""
    return cv2.addWeighted(layer, alpha, base, 1 - alpha, 0)


def _jittered(rgb, rng: np.random.RandomState) -> Tuple[int, int, int]:
    """mmdet moves each mask's colour by a random offset of norm 0.5 * 255 around -0.25 * 255 so
    that touching instances of one class stay apart. mmdet draws it from numpy's global
    generator (new colours every run); here `rng` is seeded per image, so drawings repeat."""
    direction = rng.rand(3)
    offset = (direction / np.linalg.norm(direction) - 0.5) * 0.5 * 255
    return tuple(int(v) for v in np.clip(offset + np.asarray(rgb), 0, 255).astype(np.uint8))


def _draw_label(out: np.ndarray, text: str, x: float, y: float, font_points: int) -> None:
    """`text` with its top-left corner at (x, y) on a black box padded by TEXT_PAD, as
    matplotlib places top-aligned text with a bbox; in place."""
    scale = font_points * PIXELS_PER_POINT / HERSHEY_EM_PX
    (w, h), baseline = cv2.getTextSize(text, FONT, scale, 1)
    pad = TEXT_PAD * PIXELS_PER_POINT
    x0, y0 = int(round(x - pad)), int(round(y - pad))
    x1, y1 = int(round(x + w + pad)), int(round(y + h + baseline + pad))
    box = out.copy()
    cv2.rectangle(box, (x0, y0), (x1, y1), (0, 0, 0), -1)
    out[:] = _blend(out, box, TEXT_BOX_ALPHA)
    cv2.putText(out, text, (int(round(x)), int(round(y + h))), FONT, scale, _bgr(TEXT_COLOUR), 1,
                cv2.LINE_AA)


def _draw_artists(out: np.ndarray, boxes: np.ndarray, labels: np.ndarray, texts: List[str],
                  colours: List, outlines: List, line: int, outline: int) -> np.ndarray:
    """What the visualizer draws over the image, in matplotlib's stacking order: box lines,
    then mask outlines (white), each set at ALPHA, then the labels."""
    lines = out.copy()
    for box, label in zip(boxes, labels):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(lines, (x1, y1), (x2, y2), _bgr(colours[label]), line)
    out = _blend(out, lines, ALPHA)
    if outlines:
        edges = out.copy()
        cv2.drawContours(edges, outlines, -1, (255, 255, 255), outline)
        out = _blend(out, edges, ALPHA)
    areas = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 2] - boxes[:, 0])
    # mmdet's adaptive text size, floor division included: 0.5 below 30000 pixels, else 1
    scales = np.clip(0.5 + (areas - 800) // (30000 - 800), 0.5, 1.0)
    for box, text, scale in zip(boxes, texts, scales):
        # the label's corner sits LINE_WIDTH pixels inside the box (mmdet adds it unscaled)
        _draw_label(out, text, box[0] + LINE_WIDTH, box[1] + LINE_WIDTH, int(13 * scale))
    return out


def draw_detections(image: np.ndarray, result: Dict[str, np.ndarray], classes: Sequence[str] = (),
                    palette: Sequence = (), score_thr: float = 0.3, seed: int = 0) -> np.ndarray:
    """A copy of the BGR `image` with the detections whose score is > `score_thr` (mmdet's
    comparison) drawn."""
    keep = result['scores'] > score_thr
    boxes, scores, labels = result['bboxes'][keep], result['scores'][keep], result['labels'][keep]
    colours = class_colours(palette, int(labels.max()) + 1 if len(labels) else 0)
    if not len(boxes) or boxes.sum() <= 0:  # mmdet draws no all-zero (dummy) boxes
        boxes = boxes[:0]
    h, w = image.shape[:2]
    # mmengine caps line widths at a quarter of its default font size
    cap = max(math.sqrt(h * w) // 90, 10) / 4
    line, outline = _thickness(min(LINE_WIDTH, cap)), _thickness(min(MASK_EDGE_WIDTH, cap))
    masks = result['masks'][keep] if 'masks' in result else np.zeros((0, h, w), bool)
    outlines = [
        c for mask in masks
        for c in cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)[0]
    ]
    texts = [label_text(label, score, classes) for score, label in zip(scores, labels)]
    out = _draw_artists(image.copy(), boxes, labels, texts, colours, outlines, line, outline)
    if not len(masks):
        return out
    # mmengine blends the masks, one after the other, into the image drawn so far (boxes and
    # labels included) and shows that under the same boxes, outlines and labels once more
    rng = np.random.RandomState(seed)
    for mask, label in zip(masks, labels):
        layer = out.copy()
        layer[mask] = _bgr(_jittered(colours[label], rng))
        out = _blend(out, layer, ALPHA)
    return _draw_artists(out, boxes, labels, texts, colours, outlines, line, outline)


def _label_anchor(mask: np.ndarray) -> Tuple[int, int]:
    """mmseg's label position for a class: the middle pixel of the mask's fullest row (the
    topmost such row)."""
    ys, xs = np.nonzero(mask)
    rows, counts = np.unique(ys, return_counts=True)
    row = rows[counts.argmax()]
    in_row = xs[ys == row]
    return int(in_row[len(in_row) // 2]), int(row)


def draw_segmentation(image: np.ndarray, seg_map: np.ndarray, classes: Sequence[str] = (),
                      palette: Sequence = ()) -> np.ndarray:  # yapf: disable
    """mmseg's SegLocalVisualizer with labels: each class present painted in its colour (classes
    past the class list are left out, as mmseg does) with its name on a box of that colour,
    then blended with the image at SEG_OPACITY."""
    num_classes = len(classes) if classes else int(seg_map.max()) + 1
    colours = class_colours(palette, num_classes)
    labels = [int(c) for c in np.unique(seg_map)[::-1] if c < num_classes]
    layer = np.zeros_like(image)
    for label in labels:
        layer[seg_map == label] = _bgr(colours[label])
    scale = min(image.shape[:2]) / 500
    thickness = 1 if min(image.shape[:2]) < 300 else 2
    for label in labels:
        x, y = _label_anchor(seg_map == label)
        text = classes[label] if label < len(classes) else str(label)
        (w, h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
        corner = (x + w + baseline, y + h + baseline)
        cv2.rectangle(layer, (x, y), corner, _bgr(colours[label]), -1)
        cv2.rectangle(layer, (x, y), corner, (0, 0, 0), thickness)
        cv2.putText(layer, text, (x, y + h), FONT, scale, (255, 255, 255), thickness, 2)
    return (image * (1 - SEG_OPACITY) + layer * SEG_OPACITY).astype(np.uint8)


def draw_classification(image: np.ndarray, result: Dict[str, np.ndarray],
                        classes: Sequence[str] = ()) -> np.ndarray:
    """The best class of a classification result written on a copy of `image`; small images are
    drawn at 224 px on the short side first (as image_demo draws them), so that the text fits."""
    out = image.copy()
    if min(out.shape[:2]) < 224:
        factor = 224 / min(out.shape[:2])
        out = cv2.resize(out, (round(out.shape[1] * factor), round(out.shape[0] * factor)))
    label, score = int(result['labels'][0]), float(result['scores'][0])
    name = classes[label] if label < len(classes) else str(label)
    _draw_label(out, f'{label} {name}, {score:.2f}', 4, 4, 13)
    return out


def draw(image: np.ndarray, result: Dict[str, np.ndarray], classes: Sequence[str] = (),
         palette: Sequence = (), score_thr: float = 0.3) -> np.ndarray:
    """:func:`draw_segmentation` for a result with ``seg_map``, :func:`draw_classification` for
    one with ``probs``, else :func:`draw_detections`."""
    if 'probs' in result:
        return draw_classification(image, result, classes)
    if 'seg_map' in result:
        return draw_segmentation(image, result['seg_map'], classes, palette)
    return draw_detections(image, result, classes, palette, score_thr)
