"""Predictions drawn on images: mmdet's ``DetInferencer`` or mmseg's ``MMSegInferencer`` (whichever
the config's ``default_scope`` names), so every config family we ship works the same way."""
import glob
import os.path as osp
from typing import List, NamedTuple, Optional, Tuple

from mmdet.apis import DetInferencer
from mmseg.apis import MMSegInferencer

from mmpvt_runtime import read_image, unwritable_reason

from ..models.checkpoints import fit_state_dict, load_checkpoint_file
from .cli import check_device
from .runner import load_config

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def _images(path: str) -> List[str]:
    if osp.isfile(path):
        return [path]
    if osp.isdir(path):
        found = sorted(p for p in glob.glob(osp.join(path, '*'))
                       if p.lower().endswith(IMAGE_SUFFIXES))
        if not found:
            raise FileNotFoundError(f'no image ({", ".join(IMAGE_SUFFIXES)}) in directory {path}')
        return found
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


def draw_predictions(inputs: str, config: str, weights: Optional[str] = None,
                     out_dir: str = 'outputs', device: str = 'cpu', score_thr: float = 0.3,
                     batch_size: int = 1, cfg_options: Optional[dict] = None) -> Drawn:
    """Run `config` (+ `weights`) on an image or a directory of images and draw the predictions.

    Detection configs draw boxes (and masks) with scores >= `score_thr`; segmentation configs draw
    the class map. Writes ``out_dir/vis/<image name>`` (the drawings) and ``out_dir/preds/`` (the
    raw predictions as JSON, detection only). `weights` may be any checkpoint of this model (an
    mmpvt-trained one or the authors' mmdet 2.x / mmseg 0.x files), loaded strictly; without it
    the model keeps its random initialisation (a warning says so). `cfg_options` overrides
    config entries as ``--cfg-options`` does (e.g. the model's own ``test_cfg.score_thr``,
    applied before `score_thr`). A file of the directory that is no readable image is skipped
    (listed in the result); the others are drawn.
    """
    images = _images(inputs)
    if weights is not None and not osp.isfile(weights) and '://' not in weights:
        raise FileNotFoundError(f'checkpoint not found: {weights}')
    if weights is not None:
        # read once more up front: a file that is no checkpoint is then one error naming it
        # (CheckpointReadError), where the inferencer would raise torch's unpickling traceback
        load_checkpoint_file(weights)
    check_device(device)
    if not 0.0 <= score_thr <= 1.0:
        raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
    vis_dir = osp.abspath(osp.join(out_dir, 'vis'))
    overwritten = [p for p in images if osp.dirname(osp.abspath(p)) == vis_dir]
    if overwritten:
        raise ValueError(f'--out-dir {out_dir} would write the drawings over the input images '
                         f'({overwritten[0]} ...); choose another output directory')
    problem = unwritable_reason(out_dir)
    if problem:
        raise PermissionError(problem)
    skipped = [(p, why) for p in images for why in [read_image(p)[1]] if why]
    images = [p for p in images if p not in dict(skipped)]
    if not images:
        return Drawn([], skipped)
    cfg = load_config(config, cfg_options)
    cfg.model.backbone.init_cfg = None  # weights come from `weights`, not the ImageNet URL
    if cfg.default_scope == 'mmseg':
        inferencer = StrictSegInferencer(model=cfg, weights=weights, device=device)
        inferencer(images, batch_size=batch_size, out_dir=out_dir, img_out_dir='vis')
    else:
        inferencer = StrictDetInferencer(model=cfg, weights=weights, device=device,
                                         show_progress=False)
        inferencer(images, batch_size=batch_size, out_dir=out_dir, pred_score_thr=score_thr,
                   no_save_pred=False)
    drawn = [osp.join(out_dir, 'vis', osp.basename(p)) for p in images]
    missing = [p for p in drawn if not osp.isfile(p)]
    if missing:
        raise RuntimeError(f'the inferencer did not write {missing[:3]} (output dir {out_dir})')
    return Drawn(drawn, skipped)
