"""What ``tools/deploy/onnx_infer.py`` writes for an image, in the layout of
``tools/image_demo.py`` (the inferencers' ``out_dir``):

* ``OUT/vis/<image name>``: the drawing (:mod:`.draw`);
* detection: ``OUT/preds/<image stem>.json``, DetInferencer's ``pred2dict``: ``labels``,
  ``scores`` and ``bboxes`` (original pixels) of every detection, the score threshold being a
  drawing setting only;
* segmentation: ``OUT/pred/<image stem>_pred.png``, the class map as 8-bit PNG, as
  MMSegInferencer writes it (which numbers its files 00000000_pred.png, ... instead);
* classification: ``OUT/preds/<image stem>.json``, ImageClassificationInferencer's result
  (``pred_label``, ``pred_score``, ``pred_class``, ``pred_scores`` of every class) and ``topk``,
  the best classes as [label, class, score], best first.
"""
import json
import os
import os.path as osp
import tempfile
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .draw import draw


def read_image(path: str) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """(BGR uint8 image, None), or (None, why `path` cannot be read as an image)."""
    if not osp.isfile(path):  # a FIFO would block the read forever
        return None, 'not a regular file (a FIFO, socket or device)'
    try:
        image = cv2.imread(path)
    except cv2.error as e:
        return None, f'cannot be decoded as an image ({e})'
    return (image, None) if image is not None else (None, 'cannot be decoded as an image')


def shared_output_name(images: Sequence[str]) -> Optional[str]:
    """Why two of `images` would write the same outputs (predictions are named by the image's
    stem: ``a.png`` and ``a.jpg`` both give ``a.json``), or None. Checked before any inference,
    so that no result is written over another."""
    seen = {}
    for path in images:
        stem = osp.splitext(osp.basename(path))[0]
        if stem in seen:
            return (f'{seen[stem]} and {path} would write their predictions under the same name '
                    f'({stem}); rename one of them or run them apart')
        seen[stem] = path
    return None


def unwritable_reason(out_dir: str) -> Optional[str]:
    """Why no file can be written into `out_dir` (created if missing), or None. Checked before
    any inference, so that a run does not fail after all of it."""
    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            return None
    except OSError as e:
        return f'cannot write into the output directory {out_dir}: {e.strerror or e}'


def output_paths(out_dir: str, image_path: str, task: str = 'det') -> Dict[str, str]:
    """dict(vis=drawing path, pred=prediction path) of `image_path` under `out_dir`."""
    name = osp.basename(image_path)
    stem = osp.splitext(name)[0]
    pred = (
        osp.join(out_dir, 'pred', f'{stem}_pred.png') if task == 'seg' else osp.join(
            out_dir, 'preds', f'{stem}.json'))
    return dict(vis=osp.join(out_dir, 'vis', name), pred=pred)


def prediction_json(result: Dict[str, np.ndarray]) -> dict:
    """A detection result as DetInferencer's JSON. Masks are left out: mmdet writes them as
    COCO run-length encodings, which need pycocotools, and this package depends on numpy, cv2
    and onnxruntime only."""
    return dict(labels=result['labels'].tolist(), scores=result['scores'].tolist(),
                bboxes=result['bboxes'].tolist())


def classification_json(result: Dict[str, np.ndarray], classes) -> dict:
    """A classification result as ImageClassificationInferencer's dict, plus ``topk``."""

    def name(label):
        return classes[label] if label < len(classes) else str(label)

    best = int(result['labels'][0])
    return dict(
        pred_label=best, pred_score=float(result['scores'][0]), pred_class=name(best),
        pred_scores=result['probs'].tolist(),
        topk=[[int(k), name(int(k)), float(p)] for k, p in zip(result['labels'], result['scores'])])


class OutputWriteError(OSError):
    """A prediction or drawing that could not be written (a full disk, a quota): the message
    names the file; the file there before, if any, is left whole."""


def write_atomically(path: str, data: bytes) -> None:
    """`data` into `path` through a temporary file beside it that replaces `path` only once
    complete; on failure the temporary file is removed and :class:`OutputWriteError` raised."""
    temporary = f'{path}.{os.getpid()}.tmp'
    try:
        with open(temporary, 'xb') as f:  # the umask's permissions, as a plain open gives
            f.write(data)
        os.replace(temporary, path)
    except OSError as e:
        if osp.exists(temporary):
            os.remove(temporary)
        raise OutputWriteError(f'could not write {path}: {e.strerror or e}; the file there '
                               'before, if any, is left as it was') from e


def encoded_image(path: str, image: np.ndarray) -> bytes:
    """`image` encoded in the format of `path`'s extension (cv2.imwrite's choice)."""
    ok, data = cv2.imencode(osp.splitext(path)[1] or '.png', image)
    if not ok:
        raise OutputWriteError(f'could not encode the drawing for {path}')
    return data.tobytes()


def save_outputs(out_dir: str, image_path: str, image: np.ndarray, result: Dict[str, np.ndarray],
                 meta: dict, score_thr: float = 0.3) -> Dict[str, str]:
    """Write the drawing and the prediction of one image (BGR `image` read from `image_path`,
    `result` of an OnnxModel with metadata `meta`); returns their paths (:func:`output_paths`).
    Each file is written whole or not at all (:func:`write_atomically`)."""
    paths = output_paths(out_dir, image_path, meta['task'])
    for path in paths.values():
        os.makedirs(osp.dirname(path), exist_ok=True)
    drawing = draw(image, result, meta.get('classes', []), meta.get('palette', []), score_thr)
    if 'seg_map' in result:
        prediction = encoded_image(paths['pred'], result['seg_map'].astype(np.uint8))
    elif 'probs' in result:
        prediction = json.dumps(classification_json(result, meta.get('classes', []))).encode()
    else:
        prediction = json.dumps(prediction_json(result)).encode()
    write_atomically(paths['pred'], prediction)
    write_atomically(paths['vis'], encoded_image(paths['vis'], drawing))
    return paths
