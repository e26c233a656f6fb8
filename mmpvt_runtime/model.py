""":class:`OnnxModel`: an ONNX file written by ``tools/deploy/export_onnx.py`` in onnxruntime,
called on a BGR uint8 image (H0, W0, 3) like ``model.predict`` on it.

The file's ``mmpvt`` metadata (JSON) names the task and holds what the numpy side needs: the
preprocessing (:mod:`.preprocess`), the post-processing settings and, for two-stage detectors,
the companion graphs written next to the file. Results:

* ``det``, ``two_stage``, ``detr``: dict(bboxes (N, 4) float32 in original pixels, scores (N,)
  float32, labels (N,) int64[, masks (N, H0, W0) bool]), best first;
* ``seg``: dict(seg_map (H0, W0) int64 class indices); the graph itself resizes and takes the
  argmax, reading the original size from the shape of its ``size_ref`` input;
* ``cls``: dict(probs (K,) float32, labels and scores of the ``topk`` best classes, best first)
  from the graph's ``logits`` (:mod:`.classify`).
"""
import json
import os
from typing import Callable, Dict, NamedTuple, Optional, Sequence

import numpy as np

from .classify import classification
from .dense import dense_detections
from .detr import detr_detections, padding_mask
from .metadata import MetadataError, check_metadata
from .preprocess import preprocess
from .two_stage import two_stage_detections


class ModelFileError(ValueError):
    """An ONNX file that onnxruntime cannot open, or one this runtime cannot run."""


class InputSizeError(ValueError):
    """An image whose graph input has a size the (fixed-shape) graph does not take."""


def open_session(path: str, providers: Sequence[str]):
    """An onnxruntime session of `path`; a file that is not ONNX or is cut short is a
    :class:`ModelFileError` naming it (onnxruntime raises its own InvalidProtobuf / Fail types,
    with a multi-line message)."""
    import onnxruntime as ort  # here, so that importing the package needs numpy and cv2 only
    try:
        return ort.InferenceSession(path, providers=list(providers))
    except Exception as e:  # onnxruntime's pybind exceptions share no base but Exception
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f'{path} is not a readable ONNX file (not ONNX, or truncated: '
                             f're-export it with tools/deploy/export_onnx.py); onnxruntime '
                             f'says: {first}') from None


def fixed_size_problem(declared: Sequence, given: Sequence[int]) -> Optional[str]:
    """Why an input of shape `given` does not fit a graph input declared as `declared` (ints
    for fixed sides, names or None for symbolic ones), or None."""
    fixed = [(d, g) for d, g in zip(declared[2:], given[2:]) if isinstance(d, int)]
    if all(d == g for d, g in fixed):
        return None
    want = 'x'.join(str(d) if isinstance(d, int) else '*' for d in declared[2:])
    return (f'the graph takes a fixed {want} (H x W) input, this image gives '
            f'{given[2]}x{given[3]} after resizing and padding; export with --dynamic, or with '
            f'--shape for this size')


class Task(NamedTuple):
    """How to run one task's graph: the inputs it takes besides ``input``, from (input, image
    info), and the post-processing of its outputs, from (model, outputs by name, image info)."""
    extra_inputs: Optional[Callable[[np.ndarray, dict], Dict[str, np.ndarray]]]
    postprocess: Callable[['OnnxModel', Dict[str, np.ndarray], dict], dict]


TASKS = {
    # only the shape of size_ref is read: it tells the graph the size to resize the map to
    'seg':
    Task(lambda x, info: dict(size_ref=np.zeros((1, *info['ori_shape']), np.uint8)),
         lambda model, out, info: dict(seg_map=out['seg_map'][0])),
    'det':
    Task(None, lambda model, out, info: dense_detections(out, model.meta, info)),
    'two_stage':
    Task(None,
         lambda model, out, info: two_stage_detections(out, model.companions, model.meta, info)),
    'detr':
    Task(
        lambda x, info: dict(pad_mask=padding_mask(x.shape[-2:], info['img_shape'])), lambda model,
        out, info: detr_detections(out['cls_score'][0], out['bbox_pred'][0], model.meta, info)),
    'cls':
    Task(None, lambda model, out, info: classification(out['logits'][0], model.topk)),
}


def read_metadata(path: str, text: str) -> dict:
    """The file's ``mmpvt`` metadata, parsed and checked against its task's schema
    (:mod:`.metadata`); anything else is a :class:`ModelFileError` naming the file and entry."""
    try:
        meta = json.loads(text)
        check_metadata(meta)
    except (json.JSONDecodeError, MetadataError) as e:
        raise ModelFileError(f'{path}: its mmpvt metadata does not hold what the runtime needs '
                             f'({e}); re-export it with tools/deploy/export_onnx.py') from None
    return meta  # (its task is one of the schema's, which are those of TASKS)


class OnnxModel:
    """An exported mmpvt model in onnxruntime: ``OnnxModel('model.onnx')(bgr_image)``.

    ``meta``: the file's metadata; ``companions``: the sessions of the graphs written next to it
    (two-stage RoI heads), by the names the metadata gives them; ``topk``: how many classes a
    classifier's result lists."""

    def __init__(self, path: str, providers: Sequence[str] = ('CPUExecutionProvider', ),
                 topk: int = 5) -> None:
        path = str(path)
        self.path = path
        self.topk = topk
        self.session = open_session(path, providers)
        custom = self.session.get_modelmeta().custom_metadata_map
        if 'mmpvt' not in custom:
            raise ModelFileError(f'{path} has no mmpvt metadata: export it with '
                                 'tools/deploy/export_onnx.py')
        self.meta = read_metadata(path, custom['mmpvt'])
        self.task = TASKS[self.meta['task']]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.companions = {}
        for key, name in self.meta.get('graphs', {}).items():  # plain file names (checked)
            companion = os.path.join(os.path.dirname(os.path.abspath(path)), name)
            if not os.path.isfile(companion):
                raise ModelFileError(f'{path} needs its {key} graph {companion}, which is missing: '
                                     'keep the files tools/deploy/export_onnx.py wrote together')
            self.companions[key] = open_session(companion, providers)
        self.input_shape = self.session.get_inputs()[0].shape

    @property
    def classes(self) -> list:
        """Class names (empty if the checkpoint and config named none)."""
        return self.meta.get('classes', [])

    @property
    def palette(self) -> list:
        """RGB colour per class, resolved at export as mmdet's / mmseg's visualizers resolve the
        dataset's palette (empty in files exported before palettes were stored)."""
        return self.meta.get('palette', [])

    def __call__(self, image: np.ndarray) -> Dict[str, np.ndarray]:
        """BGR uint8 (H0, W0, 3) -> the task's result (see the module docstring)."""
        x, info = preprocess(image, self.meta)
        problem = fixed_size_problem(self.input_shape, x.shape)
        if problem:
            raise InputSizeError(f'{self.path}: {problem}')
        feed = dict(input=x)
        if self.task.extra_inputs is not None:
            feed.update(self.task.extra_inputs(x, info))
        outputs = dict(zip(self.output_names, self.session.run(None, feed)))
        return self.task.postprocess(self, outputs, info)
