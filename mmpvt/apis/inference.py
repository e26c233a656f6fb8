"""Predictions drawn on images: mmdet's ``DetInferencer``, mmseg's ``MMSegInferencer`` or
mmpretrain's ``ImageClassificationInferencer`` (whichever the config's ``default_scope`` names),
so every config family we ship works the same way. mmpretrain is imported only for a classifier
config: detection and segmentation users need not install it."""
import glob
import os.path as osp
import struct
from typing import List, NamedTuple, Optional, Tuple, Union

import cv2
from mmdet.apis import DetInferencer
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from mmseg.apis import MMSegInferencer
from PIL import Image

from mmpvt_runtime import read_image, shared_output_name, unwritable_reason
from ..deploy.meta import classifier_classes
from ..fileio import WriteFailed, staged_outputs
from ..models.builder import build_from_config
from ..models.checkpoints import fit_state_dict, load_checkpoint_file
from ..safe_load import names_remote_checkpoint
from .cli import check_device
from .runner import load_config

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# mmdet's/mmseg's visualizers draw on the full-size image: 8000x8000 (64 MP) took 66 s and
# 9.1 GB for a model whose input is 96 px, so images past this are skipped with a line.
MAX_MEGAPIXELS = 40.0
# Peak memory of drawing one image at full size, per pixel of it: the slope of the peak resident
# memory of draw_predictions at 1, 9 and 25 MP on the CPU, 130 bytes with the RetinaNet demo
# (mmdet), 158 with the Semantic FPN demo (mmseg); a refused image is told what it would need.
DRAWING_BYTES_PER_PIXEL = 160


def header_size(path: str) -> Optional[Tuple[int, int]]:
    """(W, H) of the image `path` as its header states it, or None where no image format of PIL
    knows the file (or it cannot be opened). PIL's format plugins are called as ``Image.open``
    calls them; they read what they need to know the size (the header; WebP's plugin reads the
    file), not the pixels. PIL's refusal of sizes past ``Image.MAX_IMAGE_PIXELS`` (179 MP,
    ``Image.open``'s and some plugins' own) would not say the size: it is lifted while the size is
    read, and put back."""
    Image.init()
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None
        with open(path, 'rb') as f:
            prefix = f.read(16)
            for name in Image.ID:
                factory, accept = Image.OPEN[name]
                try:
                    known = accept is None or accept(prefix)
                    if known and not isinstance(known, str):  # (a str: known, not supported)
                        f.seek(0)
                        return factory(f, path).size
                except (SyntaxError, IndexError, TypeError, ValueError, OSError, struct.error):
                    continue  # not this format (what Image.open catches to try the next one)
    except OSError:  # unreadable: read_image says why
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return None


def image_problem(path: str, max_megapixels: float) -> Optional[str]:
    """Why `path` is not drawn (unreadable, or over `max_megapixels`), or None. The size is
    read from the header first: a huge image is refused before its pixels are decoded."""
    if not osp.isfile(path):
        return read_image(path)[1]  # says what it is instead (a FIFO is never opened)
    size, image = header_size(path), None
    if size is None:
        image, why = read_image(path)
        if image is None:
            return why
        size = image.shape[1], image.shape[0]
    w, h = size
    if w * h > max_megapixels * 1e6:
        needed = w * h * DRAWING_BYTES_PER_PIXEL / 2**30
        return (f'{w}x{h} px ({w * h / 1e6:.1f} MP) is over --max-megapixels '
                f'{max_megapixels:g}: drawing it at full size would take about {needed:.1f} GiB '
                'of memory; downscale it, or raise --max-megapixels')
    return read_image(path)[1] if image is None else None  # the pixels decode too


def _images(path: str) -> List[str]:
    if osp.isfile(path):
        return [path]
    if osp.isdir(path):
        found = sorted(
            p for p in glob.glob(osp.join(path, '*')) if p.lower().endswith(IMAGE_SUFFIXES))
        if not found:
            raise FileNotFoundError(f'no image ({", ".join(IMAGE_SUFFIXES)}) in directory {path}')
        return found
    if osp.exists(path):
        raise ValueError(f'{path} is neither a regular file nor a directory (a FIFO, socket or '
                         'device?); give an image or a directory of images')
    raise FileNotFoundError(f'image or directory not found: {path}')


class _StrictWeights:
    """Mixed into mmdet's/mmseg's inferencers: the weights are fitted to the model strictly
    (:func:`~mmpvt.models.checkpoints.fit_state_dict`) before the inferencer loads them, so a
    checkpoint of another model is an error instead of a drawing from a partly random one."""

    def __init__(self, *args, weights: Optional[str] = None, **kwargs) -> None:
        self._weights_source = weights
        super().__init__(*args, weights=weights, **kwargs)

    def _load_weights_to_model(self, model, checkpoint, cfg) -> None:
        if checkpoint is not None:
            fit_state_dict(model, checkpoint, str(self._weights_source), strict=True)
        super()._load_weights_to_model(model, checkpoint, cfg)


class StrictDetInferencer(_StrictWeights, DetInferencer):
    """mmdet's DetInferencer, loading its weights strictly."""


class StrictSegInferencer(_StrictWeights, MMSegInferencer):
    """mmseg's MMSegInferencer, loading its weights strictly."""


class Drawn(NamedTuple):
    """What :func:`draw_predictions` did: the drawings' paths, and (path, reason) of each input
    it skipped because it could not be read as an image."""
    paths: List[str]
    skipped: List[Tuple[str, str]]


class Classified(NamedTuple):
    """What :func:`draw_predictions` did for a classifier: :class:`Drawn`'s fields, and per
    drawn image its `topk` best classes as (class name, probability), best first."""
    paths: List[str]
    skipped: List[Tuple[str, str]]
    top: List[List[Tuple[str, float]]]


def _classifier(cfg, weights: Optional[str], device: str):
    """mmpretrain's ImageClassificationInferencer on the config's model with `weights` fitted
    strictly (a checkpoint of another model is an error, as for detectors and segmentors)."""
    from mmpretrain.apis import ImageClassificationInferencer
    model = build_from_config(cfg, pretrained=False)
    checkpoint = None
    if weights is not None:
        checkpoint = load_checkpoint_file(weights)
        fit_state_dict(model, checkpoint, str(weights), strict=True)
        _load_checkpoint_to_model(model, checkpoint, strict=False)  # it fits: nothing skipped
    model._config = cfg  # what the inferencer reads its test pipeline from
    classes = classifier_classes(cfg, ((checkpoint or {}).get('meta') or {}).get('dataset_meta'))
    return ImageClassificationInferencer(model, pretrained=False, device=device, classes=classes
                                         or None)


def classify(images: List[str], cfg, weights: Optional[str], out_dir: str, device: str, topk: int,
             batch_size: int) -> Tuple[List[str], List[List[Tuple[str, float]]]]:
    """Drawings (``out_dir/vis/<image stem>.png``, the best class and its probability written on
    the image) and the `topk` (class, probability) of each image (all classes if fewer)."""
    inferencer = _classifier(cfg, weights, device)
    vis_dir = osp.join(out_dir, 'vis')
    # small images (the demo's crops) are drawn at 224 px on the short side, so the text fits
    small = max(min(cv2.imread(p).shape[:2]) for p in images) < 224
    results = inferencer(images, batch_size=batch_size, show_dir=vis_dir,
                         resize=224 if small else None)
    classes = inferencer.classes or [str(i) for i in range(len(results[0]['pred_scores']))]
    top = [
        [
            (classes[i], float(r['pred_scores'][i]))  # all of them if there are fewer; ties
            for i in (-r['pred_scores']).argsort(kind='stable')[:topk]
        ]  # in class order
        for r in results
    ]
    return [osp.join(vis_dir, osp.splitext(osp.basename(p))[0] + '.png') for p in images], top


def draw_predictions(inputs: str, config: str, weights: Optional[str] = None,
                     out_dir: str = 'outputs', device: str = 'cpu', score_thr: float = 0.3,
                     batch_size: int = 1, cfg_options: Optional[dict] = None, topk: int = 5,
                     max_megapixels: float = MAX_MEGAPIXELS) -> Union[Drawn, Classified]:
    """Run `config` (+ `weights`) on an image or a directory of images and draw the predictions.

    Detection configs draw boxes (and masks) with scores >= `score_thr`; segmentation configs draw
    the class map; classifier configs (mmpretrain) write the best class on the image and return
    the `topk` classes of each image (:class:`Classified`). Writes ``out_dir/vis/<image name>``
    (the drawings; classifiers: ``<image stem>.png``) and ``out_dir/preds/`` (the raw
    predictions as JSON, detection only). `weights` may be any checkpoint of this model (an
    mmpvt-trained one or the authors' mmdet 2.x / mmseg 0.x / ImageNet files), loaded strictly;
    without it
    the model keeps its random initialisation (a warning says so). `cfg_options` overrides
    config entries as ``--cfg-options`` does (e.g. the model's own ``test_cfg.score_thr``,
    applied before `score_thr`). A file of the directory that is no readable image, or an
    image of more than `max_megapixels` million pixels, is skipped (listed in the result); the
    others are drawn.
    """
    images = _images(inputs)
    if weights is not None and not osp.isfile(weights) and not names_remote_checkpoint(weights):
        raise FileNotFoundError(f'checkpoint not found: {weights}')
    if weights is not None:
        # read once more up front: a file that is no checkpoint is then one error naming it
        # (CheckpointReadError), where the inferencer would raise torch's unpickling traceback
        load_checkpoint_file(weights)
    check_device(device)
    if not 0.0 <= score_thr <= 1.0:
        raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
    if topk < 1:
        raise ValueError(f'topk must be at least 1, got {topk}')
    if batch_size < 1:
        raise ValueError(f'batch_size must be at least 1, got {batch_size}')
    if not max_megapixels > 0:  # (NaN fails too)
        raise ValueError(f'max_megapixels must be positive, got {max_megapixels}')
    vis_dir = osp.abspath(osp.join(out_dir, 'vis'))
    overwritten = [p for p in images if osp.dirname(osp.abspath(p)) == vis_dir]
    if overwritten:
        raise ValueError(f'--out-dir {out_dir} would write the drawings over the input images '
                         f'({overwritten[0]} ...); choose another output directory')
    problem = shared_output_name(images)
    if problem:
        raise ValueError(problem)
    problem = unwritable_reason(out_dir)
    if problem:
        raise PermissionError(problem)
    skipped = [(p, why) for p in images for why in [image_problem(p, max_megapixels)] if why]
    images = [p for p in images if p not in dict(skipped)]
    if not images:
        return Drawn([], skipped)
    cfg = load_config(config, cfg_options)
    cfg.model.backbone.init_cfg = None  # weights come from `weights`, not the ImageNet URL
    # the inferencers write with plain open()/cv2.imwrite: they write into a staging directory,
    # whose files replace those of out_dir only once all are there (a full disk, an error:
    # the previous drawings and predictions stay whole)
    with staged_outputs(out_dir) as staging:
        if cfg.default_scope == 'mmpretrain':
            drawn, top = classify(images, cfg, weights, staging, device, topk, batch_size)
            _check_drawn(drawn, out_dir)
            return Classified([_moved(p, staging, out_dir) for p in drawn], skipped, top)
        if cfg.default_scope == 'mmseg':
            inferencer = StrictSegInferencer(model=cfg, weights=weights, device=device)
            inferencer(images, batch_size=batch_size, out_dir=staging, img_out_dir='vis')
        else:
            inferencer = StrictDetInferencer(model=cfg, weights=weights, device=device,
                                             show_progress=False)
            inferencer(images, batch_size=batch_size, out_dir=staging, pred_score_thr=score_thr,
                       no_save_pred=False)
        drawn = [osp.join(staging, 'vis', osp.basename(p)) for p in images]
        _check_drawn(drawn, out_dir)
        return Drawn([_moved(p, staging, out_dir) for p in drawn], skipped)


def _moved(path: str, staging: str, out_dir: str) -> str:
    """Where `path` of the staging directory is once the outputs are in place."""
    return osp.join(out_dir, osp.relpath(path, staging))


def _check_drawn(drawn: List[str], out_dir: str) -> None:
    """Every drawing is there: mmcv's imwrite answers a failed write (a full disk) with False,
    which the inferencers do not check."""
    missing = [p for p in drawn if not osp.isfile(p) or osp.getsize(p) == 0]
    if missing:
        raise WriteFailed(
            None, None, f'could not write the drawing of '
            f'{osp.basename(missing[0])} into {out_dir} (is the disk full?); the '
            'files there before are left as they were')
