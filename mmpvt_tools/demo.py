"""The README's main job: synthetic data -> training -> evaluation -> a picture of predictions.

:func:`run_demo` trains and tests in one mmengine Runner. With ``quiet=True`` (the tool's
default) the terminal shows one line per phase (``say``), mmengine's training/test progress lines
and real warnings; everything else mmengine and the COCO evaluator write (the config dump, the
environment and hook tables, pycocotools' prints) goes to the run's log file only.
"""
import contextlib
import glob
import io
import itertools
import logging
import os
import os.path as osp
import re
from typing import Callable, List, Optional, Sequence

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmpvt.apis import configure_train, find_resume_checkpoint, load_config
from . import demo_data

# The caption strip above each tile of predictions.png: mmdet's and mmseg's visualizers draw the
# ground truth on the left half of each picture and the prediction on the right half.
CAPTION_HEIGHT = 24
CAPTION_BACKGROUND = (255, 255, 255)
CAPTION_COLOUR = (0, 0, 0)

# Console lines of mmengine's loggers that are kept: the training/test progress lines.
_PROGRESS = re.compile(r'(Epoch|Iter)\((train|val|test)\)')
# Warnings logged (not warnings.warn-ed) by third-party code that say nothing about the demo, as
# (message regex, the file that logs it): mmengine's FileClient/HardDiskBackend deprecations
# (mmengine's own LoggerHook/CheckpointHook build a FileClient; logged through mmengine's
# print_log), and mmdet's error that a model which predicted nothing has no COCO metrics (the
# demo's summary says so in its own words).
KNOWN_LOG_WARNINGS = (
    (re.compile(r'^"FileClient" will be deprecated in future'), 'mmengine/logging/logger.py'),
    (re.compile(r'^"HardDiskBackend" is the alias of "LocalBackend"'),
     'mmengine/logging/logger.py'),
    (re.compile(r'^The testing results of the whole dataset is empty'),
     'mmdet/evaluation/metrics/coco_metric.py'),
)


def _known_warning(record: logging.LogRecord) -> bool:
    message, source = record.getMessage(), record.pathname.replace(os.sep, '/')
    return any(
        pattern.search(message) and source.endswith(path) for pattern, path in KNOWN_LOG_WARNINGS)


class _ConsoleFilter(logging.Filter):
    """On the terminal: progress lines and warnings/errors, less the known third-party ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return not _known_warning(record)
        return bool(_PROGRESS.match(record.getMessage()))


def _quiet_console(logger: logging.Logger) -> None:
    for handler in logger.handlers:
        # FileHandler is a StreamHandler too: the log file keeps everything
        if isinstance(handler, logging.StreamHandler) and \
                not isinstance(handler, logging.FileHandler) and \
                not any(isinstance(f, _ConsoleFilter) for f in handler.filters):
            handler.addFilter(_ConsoleFilter())


class _QuietRunner(Runner):
    """A Runner whose logger shows only progress lines and warnings on the terminal."""

    def build_logger(self, *args, **kwargs) -> MMLogger:
        logger = super().build_logger(*args, **kwargs)
        _quiet_console(logger)
        return logger


class _LogWriter(io.TextIOBase):
    """A text stream that sends each complete line to `logger` at INFO (the log file, in quiet
    mode): for pycocotools and mmengine code that print() instead of logging."""

    def __init__(self, logger: logging.Logger):
        self.logger, self.pending = logger, ''

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self.pending + text).split('\n')
        self.pending = lines.pop()
        for line in lines:
            if line.strip():
                self.logger.info(line)
        return len(text)

    def flush(self) -> None:
        if self.pending.strip():
            self.logger.info(self.pending)
        self.pending = ''


@contextlib.contextmanager
def _prints_to_log(logger: logging.Logger, enabled: bool):
    if not enabled:
        yield
        return
    writer = _LogWriter(logger)
    try:
        with contextlib.redirect_stdout(writer):
            yield
    finally:
        writer.flush()


def _caption(width: int, captions: Sequence[str]) -> np.ndarray:
    """A white strip with one caption centred over each of len(captions) equal columns."""
    strip = np.full((CAPTION_HEIGHT, width, 3), CAPTION_BACKGROUND, np.uint8)
    column = width / len(captions)
    for i, text in enumerate(captions):
        scale = 0.5
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        while w > column - 4 and scale > 0.25:
            scale -= 0.05
            (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x = int(i * column + (column - w) / 2)
        cv2.putText(strip, text, (max(x, 0), (CAPTION_HEIGHT + h) // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, CAPTION_COLOUR, 1, cv2.LINE_AA)
        strip[:, int(i * column)] = CAPTION_COLOUR  # a rule left of each part, tiles included
    return strip


def prediction_grid(image_paths: List[str], out_file: str, columns: int = 4,
                    tile_height: int = 256,
                    captions: Optional[Sequence[str]] = ('ground truth', 'prediction')
                    ) -> str:  # yapf: disable
    """Tile drawn predictions (any sizes) into one PNG, `columns` per row.

    Each tile is one drawing scaled to `tile_height`, with a caption strip of
    :data:`CAPTION_HEIGHT` px above it that names its equal-width parts (mmdet's and mmseg's
    visualizers put the ground truth left and the prediction right); ``captions=None``: no strip.
    """
    if not image_paths:
        raise FileNotFoundError('no prediction drawings to tile')
    tiles = []
    for path in image_paths:
        img = cv2.imread(path)
        scale = tile_height / img.shape[0]
        tiles.append(cv2.resize(img, (max(1, round(img.shape[1] * scale)), tile_height)))
    width = max(t.shape[1] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, 0, 0, width - t.shape[1], cv2.BORDER_CONSTANT) for t in tiles]
    if captions:
        tiles = [np.concatenate([_caption(t.shape[1], captions), t]) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    cv2.imwrite(out_file, np.concatenate(rows, axis=0))
    return out_file


def prepare_data(data_root: str, say: Callable[[str], None] = print) -> dict:
    """The dataset in `data_root` (any parameters), generated with the defaults if missing; the
    classification crops are added to a dataset generated without them."""
    meta = demo_data.read_meta(data_root)
    if meta is None:
        d = demo_data.DEFAULTS
        say(f'generating data: {d["num_train"]} training + {d["num_val"]} validation images of '
            f'{d["img_size"][0]}x{d["img_size"][1]} -> {data_root}')
        meta = demo_data.generate(data_root)
    else:
        say(f'data: {data_root} ({meta["num_train"]} training + {meta["num_val"]} validation '
            f'images of {meta["img_size"][0]}x{meta["img_size"][1]}, generated earlier)')
        demo_data.write_crops(data_root)
    return meta


def _draw_test_predictions(cfg: Config, show_dir: str) -> None:
    """Make the test run draw ground truth | prediction for every test image into `show_dir`
    (the --show-dir of tools/test.py, see runner.configure_test)."""
    hook = cfg.default_hooks.visualization
    if cfg.default_scope == 'mmpretrain':
        # the crops are small: drawn at 224 px on the short side so that the text fits
        hook.update(enable=True, out_dir=show_dir, interval=1, resize=224)
    elif cfg.default_scope == 'mmdet':
        hook.draw = True
        hook.test_out_dir = show_dir
    else:
        hook.draw = True
        cfg.visualizer.save_dir = show_dir
        hook.interval = 1  # mmseg's hook would otherwise draw only every 50th batch


# mmengine keeps one Visualizer per class and name in a process (ManagerMixin.get_instance): a
# second Runner whose config names the same visualizer (mmdet's runtime says 'visualizer') would
# reuse the first run's, and log its scalars into the first run's vis_data. Each run of the
# process (run_figure5 runs three) gets its own name.
_RUN_NUMBERS = itertools.count(1)


def _own_visualizer(cfg: Config) -> None:
    if cfg.get('visualizer') is not None:
        name = cfg.visualizer.get('name', 'visualizer')
        cfg.visualizer.name = f'{name}_run{next(_RUN_NUMBERS)}'


def _describe_schedule(cfg: Config, validate: bool = False) -> str:
    train_cfg = cfg.train_cfg
    count, unit = ((train_cfg.max_epochs, 'epoch') if 'max_epochs' in train_cfg else
                   (train_cfg.max_iters, 'iteration'))
    length = f'{count} {unit}{"" if count == 1 else "s"}'
    text = f'{length}, batch {cfg.train_dataloader.batch_size}'
    if validate:
        interval = train_cfg.get('val_interval', 1)
        text += (f', validating after every {unit}'
                 if interval == 1 else f', validating every {interval} {unit}s')
    return text


def run_demo(config: str = 'configs/demo/retinanet_pvt_t_quick.py', data_root: str = 'data/shapes',
             work_dir: Optional[str] = None, cfg_options: Optional[dict] = None,
             num_pictures: int = 8, resume: bool = False, quiet: bool = True,
             say: Callable[[str], None] = print, validate: bool = False) -> dict:
    """Generate the data if missing, train `config`, evaluate it and draw predictions.

    One Runner trains and then tests. Validation during training is switched off (the test
    that follows evaluates the same split) unless `validate`: then it runs as the config says
    (``train_cfg.val_interval``) and its metrics are logged per epoch to
    ``LOG_DIR/vis_data/scalars.json``, where :mod:`.curves` reads them. `say` prints the phase
    lines. Returns dict(metrics=..., checkpoint=..., picture=..., captions=..., work_dir=...,
    log_dir=..., log_file=..., num_test_images=..., default_scope=...): `metrics` as the
    evaluator names them (mmpretrain's Accuracy: ``accuracy/top1`` [and ``accuracy/top5``], in
    percent), `captions` the caption strip of each tile of the picture, ``log_dir`` this start's
    ``WORK_DIR/<timestamp>``.
    """
    if quiet:
        # config loading logs through mmengine's default logger (e.g. "Using env variable")
        _quiet_console(MMLogger.get_instance('mmengine'))
    prepare_data(data_root, say)
    os.environ['MMPVT_DEMO_DATA'] = osp.join(osp.abspath(data_root), '')
    cfg = load_config(config, cfg_options, work_dir=work_dir)
    work_dir = osp.abspath(cfg.work_dir)
    cfg.work_dir = work_dir
    previous = find_resume_checkpoint(work_dir) if resume else None
    configure_train(cfg, resume='auto' if resume else None)
    if not validate:
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    show_dir = osp.join(work_dir, 'predictions')
    _draw_test_predictions(cfg, show_dir)
    _own_visualizer(cfg)

    runner = (_QuietRunner if quiet else Runner).from_cfg(cfg)
    log_file = runner.logger.log_file
    if resume:
        say(f'training: resuming from {previous}'
            if previous else f'training: no checkpoint in {work_dir} yet, starting from scratch')
    say(f'training {osp.basename(config)} ({_describe_schedule(cfg, validate)}) on CPU; full log: '
        f'{log_file}')
    with _prints_to_log(runner.logger, quiet):
        runner.train()
    checkpoint = find_resume_checkpoint(work_dir)

    with _prints_to_log(runner.logger, quiet):
        num_test = len(runner.test_loop.dataloader.dataset)  # builds the loop test() runs
    say(f'evaluating {osp.basename(checkpoint) if checkpoint else "the model"} on {num_test} '
        f'validation images ...')
    for stale in _drawings(show_dir):  # an earlier run's pictures must not end up in this one
        os.remove(stale)
    with _prints_to_log(runner.logger, quiet):
        metrics = runner.test()

    drawn = _drawings(show_dir)
    picture = osp.join(work_dir, 'predictions.png')
    shown = drawn[:num_pictures]
    captions = _captions(cfg)
    say(f'drawing {len(shown)} validation images ({" | ".join(captions)}) -> {picture}')
    prediction_grid(shown, picture, captions=captions)
    return dict(metrics=metrics, checkpoint=checkpoint, picture=picture, captions=tuple(captions),
                work_dir=work_dir, log_dir=runner.log_dir, log_file=log_file,
                num_test_images=num_test, default_scope=cfg.default_scope)


def _drawings(show_dir: str) -> List[str]:
    return sorted(
        p for ext in ('png', 'jpg')
        for p in glob.glob(osp.join(show_dir, '**', f'*.{ext}'), recursive=True))


def _captions(cfg: Config) -> Sequence[str]:
    threshold = cfg.default_hooks.visualization.get('score_thr')
    if cfg.default_scope == 'mmdet':
        threshold = 0.3 if threshold is None else threshold  # DetVisualizationHook's default
        return ('ground truth', f'prediction (score >= {threshold:g})')
    if cfg.default_scope == 'mmpretrain':  # one picture, both written on it
        return ('ground truth and prediction', )
    return ('ground truth', 'prediction')
