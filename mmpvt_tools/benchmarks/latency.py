"""Whole-model inference latency per image, measured as the paper's Table 11 was.

The authors' ``benchmark.py`` (mmdet 2.13's) ran batch 1 through the config's test pipeline in
FP32, timed each image from a device synchronize to the next around the model's test call (host
to device copy, forward, NMS and rescaling to the original size; not the data loading), skipped
the first 5 images and reported images/s over the next 2000. mmdet 3.x's ``test_step`` is that
call (data preprocessor, forward, post-processing), so each image here is::

    data = pipeline(next image)            # untimed, as the data loader was
    synchronize; t0; model.test_step(data); synchronize; t1

Images come from the config's test dataset where its files are present; otherwise from the
synthetic shapes of :mod:`mmpvt_tools.demo_data`, rendered as 480x640 (H x W) landscape images in a
temporary folder and run through the same test pipeline (annotation loading left out: there are
no annotations, and nothing that is timed reads them). Detection and segmentation configs alike.
"""
import os.path as osp
import statistics
import tempfile
from contextlib import ExitStack
from importlib import import_module
from typing import Any, Callable, Dict, List, Optional, Sequence

import cv2
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from mmengine.utils import ProgressBar
from torch import nn

from mmpvt.apis import load_config
from mmpvt.apis.cli import check_device
from mmpvt.models.builder import build_from_config, registry_of
from mmpvt.models.checkpoints import fit_state_dict, load_checkpoint_file
from ..demo_data import DEFAULTS, render_image
from ..measure import AMP_DTYPES, autocast, machine, timed

WARMUP_IMAGES = 5  # the authors' tool: the first 5 images are not timed
PAPER_IMAGES = 2000  # ... and the next 2000 are
SYNTHETIC_SIZE = (480, 640)  # (H, W) of the stand-in images when the test data is absent


def _innermost(dataset_cfg: dict) -> dict:
    """The dataset a wrapper (RepeatDataset, ClassBalancedDataset, ...) holds."""
    while isinstance(dataset_cfg.get('dataset'), dict):
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def _test_dataset(cfg) -> Optional[dict]:
    """The config's test (else validation) dataset config, or None."""
    loader = cfg.get('test_dataloader') or cfg.get('val_dataloader')
    dataset = loader.get('dataset') if loader else None
    return dataset if isinstance(dataset, dict) else None


def _test_data_path(cfg) -> Optional[str]:
    """The file (annotations) or folder (images) of the config's test dataset whose existence
    decides whether it can be read; None for a config without a test dataset."""
    dataset = _test_dataset(cfg)
    if dataset is None:
        return None
    ds = _innermost(dataset)
    root = ds.get('data_root') or ''
    if ds.get('ann_file'):
        return osp.join(root, ds['ann_file'])
    prefix = ds.get('data_prefix') or {}
    return osp.join(root, prefix.get('img') or prefix.get('img_path') or '')


def _without_annotations(pipeline: Sequence[dict]) -> List[dict]:
    return [t for t in pipeline if 'LoadAnnotations' not in str(t.get('type', ''))]


class ImageSource:
    """Test inputs by index, each one the config's test pipeline applied to one image, made on
    request (outside the timed region) so that no more than one is held in memory."""

    def __init__(self, cfg, folder: str) -> None:
        registry_of(cfg)  # enter the config's scope: its datasets and transforms are built there
        path = _test_data_path(cfg)
        if path is not None and osp.exists(path):
            datasets = import_module(f'{cfg.default_scope}.registry').DATASETS
            self.dataset = datasets.build(_test_dataset(cfg))
            if len(self.dataset) == 0:
                raise ValueError(f'the test dataset of the config ({path}) has no images')
            self.description = f'{path} ({len(self.dataset)} images, reused in turn)'
            self._item = lambda i: self.dataset[i % len(self.dataset)]
            return
        pipeline = cfg.get('test_pipeline') or _innermost(_test_dataset(cfg) or {}).get('pipeline')
        if not pipeline:
            raise ValueError('the config has neither test data nor a test_pipeline to apply to '
                             'synthetic images')
        self.pipeline = Compose(_without_annotations(pipeline))
        self.folder = folder
        h, w = SYNTHETIC_SIZE
        self.description = (f'synthetic shapes, {h}x{w} (the test data {path} is absent)'
                            if path else f'synthetic shapes, {h}x{w} (the config has no test data)')
        self._item = self._synthetic

    def _synthetic(self, index: int) -> dict:
        path = osp.join(self.folder, f'{index % 50:06d}.png')  # 50 distinct images, reused
        if not osp.exists(path):
            image = render_image(index % 50, DEFAULTS['seed'], SYNTHETIC_SIZE,
                                 DEFAULTS['max_objects'], (64, 224))[0]
            cv2.imwrite(path, image)
        return self.pipeline(dict(img_path=path, img_id=index))

    def __getitem__(self, index: int) -> dict:
        return pseudo_collate([self._item(index)])


def build_model(cfg, checkpoint: Optional[str], device: str) -> nn.Module:
    """The config's model in eval mode on `device`: `checkpoint` loaded strictly, else every
    layer at PyTorch's default initialisation. The network's cost does not depend on the weights;
    the post-processing's does: random heads score every candidate box above the score threshold
    (measured: RetinaNet's 100 kept boxes all score > 0.99), so NMS works on the most boxes the
    test config lets through, an upper bound of what a trained model costs."""
    torch.manual_seed(0)
    model = build_from_config(cfg, pretrained=False)
    if checkpoint is not None:
        ckpt = load_checkpoint_file(checkpoint)
        fit_state_dict(model, ckpt, str(checkpoint), strict=True)
        _load_checkpoint_to_model(model, ckpt, strict=False)
    return model.to(device).eval()


def measure_latency(config: str, checkpoint: Optional[str] = None, device: str = 'cpu',
                    images: int = PAPER_IMAGES, warmup: int = WARMUP_IMAGES,
                    amp: Optional[str] = None, cfg_options: Optional[dict] = None,
                    progress: bool = True, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Time `images` images (after `warmup` untimed ones) through `config`'s model, batch 1.

    Returns the report: ``ms_per_image`` (1000 / images_per_s, as the authors computed it),
    ``images_per_s``, ``median_ms``, ``times_ms`` (one entry per timed image), ``images``,
    ``warmup``, ``device``, ``amp``, ``threads``, ``source`` (where the images came from) and the
    versions. `amp`: None (FP32, the paper's setting), 'bf16' or 'fp16' autocast.
    """
    if images < 1 or warmup < 0:
        raise ValueError(f'--images must be >= 1 and the warm-up >= 0, got {images} and {warmup}')
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f'amp must be one of {sorted(AMP_DTYPES)} or None, got {amp!r}')
    check_device(device)
    cfg = load_config(config, cfg_options)
    model = build_model(cfg, checkpoint, device)
    times: List[float] = []
    with ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix='mmpvt-latency-'))
        source = ImageSource(cfg, folder)
        log(f'{config}: batch 1, {warmup} warm-up images, then {images} timed; images from '
            f'{source.description}')
        stack.enter_context(torch.no_grad())
        stack.enter_context(autocast(device, amp))
        bar = None
        for index in range(warmup + images):
            if progress and index == warmup:
                bar = ProgressBar(images)  # started after the warm-up: its rate is the timed one
            data = source[index]  # the data loading: not timed
            seconds = timed(lambda: model.test_step(data), device)
            if index >= warmup:
                times.append(seconds)
                if bar is not None:
                    bar.update()
    if bar is not None:
        print()  # ProgressBar leaves the cursor on its line
    images_per_s = len(times) / sum(times)
    return dict(config=config, checkpoint=checkpoint, device=device, amp=amp, batch=1,
                warmup=warmup, images=len(times), source=source.description,
                ms_per_image=1000 / images_per_s, images_per_s=images_per_s,
                median_ms=1000 * statistics.median(times), times_ms=[1000 * t for t in times],
                **machine())


def format_report(report: Dict[str, Any]) -> str:
    """One line: ms/img and img/s (and the median)."""
    return (f"{report['config']} on {report['device']}: {report['ms_per_image']:.1f} ms/img, "
            f"{report['images_per_s']:.2f} img/s over {report['images']} images (median "
            f"{report['median_ms']:.1f} ms; batch 1, {report['amp'] or 'fp32'})")
