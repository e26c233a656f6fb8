"""The synthetic shapes dataset and the one-command demo (mmpvt_tools.demo_data,
mmpvt_tools.demo)."""
import ast
import filecmp
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from mmpvt_tools import demo_data
from mmpvt_tools.demo import CAPTION_BACKGROUND, CAPTION_HEIGHT, prediction_grid
from .helpers import REPO, load_tool, run_command, run_main

pytestmark = pytest.mark.slow  # whole models, training or subprocesses: not in test-fast

SMALL = dict(num_train=4, num_val=2, img_size=(64, 96), max_objects=3, size_range=(20, 48))


def test_same_seed_gives_byte_identical_files(tmp_path):
    demo_data.generate(str(tmp_path / 'a'), **SMALL)
    demo_data.generate(str(tmp_path / 'b'), **SMALL)
    cmp = filecmp.dircmp(tmp_path / 'a', tmp_path / 'b')
    files = []
    for root, _, names in os.walk(tmp_path / 'a'):
        files += [os.path.relpath(os.path.join(root, n), tmp_path / 'a') for n in names]
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'b', files, shallow=False)
    images = [f for f in files if not f.startswith('crops')]  # + one crop per shape
    assert len(images) == 2 * 6 + 3 and mismatch == [] and errors == [] and not cmp.left_only


def test_other_seed_gives_other_images(tmp_path):
    demo_data.generate(str(tmp_path / 'a'), **SMALL)
    demo_data.generate(str(tmp_path / 'b'), **dict(SMALL, seed=1))
    a = (tmp_path / 'a' / 'images' / 'training' / '000000.png').read_bytes()
    assert a != (tmp_path / 'b' / 'images' / 'training' / '000000.png').read_bytes()


def test_coco_json_and_masks_describe_the_same_objects(tiny_shapes):
    coco = COCO(str(tiny_shapes / 'annotations' / 'instances_training.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(demo_data.CLASSES)
    assert len(coco.getImgIds()) == 8 and len(coco.getAnnIds()) >= 8
    for image in coco.loadImgs(coco.getImgIds()):
        semantic = cv2.imread(
            str(tiny_shapes / 'annotations' / 'training' / image['file_name']),
            cv2.IMREAD_UNCHANGED)
        assert semantic.shape == (96, 128) and set(np.unique(semantic)) <= {0, 1, 2, 3, 4}
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image['id'])):
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and all(len(p) >= 6 for p in ann['segmentation'])
            pixels = coco.annToMask(ann).astype(bool)
            # polygon rasterisation vs the rendered mask: the labels agree almost everywhere
            agree = np.mean(semantic[pixels] == ann['category_id'])
            assert agree > 0.9


def test_existing_directory_is_never_overwritten(tmp_path):
    root = tmp_path / 'shapes'
    demo_data.generate(str(root), **SMALL)
    before = (root / 'meta.json').read_bytes()
    assert demo_data.generate(str(root), **SMALL)['num_train'] == 4  # same parameters: reused
    with pytest.raises(FileExistsError, match='not generated with these parameters'):
        demo_data.generate(str(root), **dict(SMALL, num_train=5))
    assert (root / 'meta.json').read_bytes() == before


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):

    def fail(root, split, *args):
        if split == 'validation':
            raise KeyboardInterrupt
        return original(root, split, *args)

    original = demo_data._write_split
    monkeypatch.setattr(demo_data, '_write_split', fail)
    with pytest.raises(KeyboardInterrupt):
        demo_data.generate(str(tmp_path / 'shapes'), **SMALL)
    assert os.listdir(tmp_path) == []


def test_meta_json_records_parameters(tiny_shapes):
    meta = json.loads((tiny_shapes / 'meta.json').read_text())
    assert meta['classes'] == list(demo_data.CLASSES) and meta['img_size'] == [96, 128]


@pytest.mark.parametrize('split', demo_data.SPLITS)
def test_crops_are_one_square_per_shape_labelled_with_its_class(tiny_shapes, split):
    coco = COCO(str(tiny_shapes / 'annotations' / f'instances_{split}.json'))
    lines = (tiny_shapes / 'crops' / f'{split}.txt').read_text().splitlines()
    anns = coco.loadAnns(sorted(coco.getAnnIds()))
    # every shape whose crop is at least 16 px, in annotation order; label = category id - 1
    assert len(lines) >= 0.9 * len(anns) and len(lines) <= len(anns)
    labels = [int(line.split()[1]) for line in lines]
    assert set(labels) <= {0, 1, 2, 3}
    by_image = {}
    for line, label in zip(lines, labels):
        name = line.split()[0]
        assert name.startswith(f'{split}/')
        crop = cv2.imread(str(tiny_shapes / 'crops' / name))
        stem = name.split('/')[1].rsplit('_', 1)[0]
        image = next(i for i in coco.loadImgs(coco.getImgIds()) if i['file_name'] == f'{stem}.png')
        k = by_image[stem] = by_image.get(stem, -1) + 1
        ann = [a for a in anns if a['image_id'] == image['id']][k]
        assert label == ann['category_id'] - 1
        # the shape's box and some background around it; square unless the border cut it
        h, w = crop.shape[:2]
        assert min(h, w) >= 16 and max(h, w) >= max(ann['bbox'][2:]) - 1
        at_border = h != w
        assert not at_border or min(h, w) < 1.25 * max(ann['bbox'][2:]) + 1


def test_crops_are_added_to_a_dataset_made_without_them(tmp_path):
    import shutil
    root = tmp_path / 'shapes'
    demo_data.generate(str(root), **SMALL)
    before = (root / 'crops' / 'training.txt').read_text()
    shutil.rmtree(root / 'crops')  # as a dataset generated before the split existed
    demo_data.ensure_dataset(str(root))
    assert (root / 'crops' / 'training.txt').read_text() == before


# ---- the demo through the tools ------------------------------------------------------------
# What a quiet demo must not show on the terminal: mmengine's config dump, environment and hook
# tables, and the known third-party warnings tools/demo.py filters.
NOT_ON_TERMINAL = ('Config:', 'System environment', 'Hooks will be executed',
                   'pkg_resources is deprecated', '"FileClient" will be deprecated',
                   '"HardDiskBackend" is the alias', 'loading annotations into memory',
                   'instance named of visualizer has been created', 'is out of bounds', 'Traceback')
PHASES = ('[demo] generating data: ', '[demo] training ', '[demo] evaluating ', '[demo] drawing ',
          'Final metrics')
FAST = [
    'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False'
]


def demo_command(data, work_dir, *args, options=()):
    return [
        'tools/demo.py', '--data',
        str(data), '--work-dir',
        str(work_dir), *args, '--cfg-options', *FAST, *options
    ]


def assert_quiet(result):
    for text in NOT_ON_TERMINAL:
        assert text not in result.stdout and text not in result.stderr, text


def caption_has_text(strip):
    """Whether the caption strip has something drawn in each half (vs a blank strip)."""
    blank = np.full_like(strip, CAPTION_BACKGROUND)
    half = strip.shape[1] // 2
    # the rule at x = 0 and x = half is left out: only the text counts
    return [
        np.count_nonzero(np.any(strip[:, a + 2:b - 2] != blank[:, a + 2:b - 2], axis=2)) > 20
        for a, b in ((0, half), (half, strip.shape[1]))
    ]


@pytest.mark.parametrize(
    'config,options,metric',
    [
        ('retinanet_pvt_t_quick', ['train_cfg.max_epochs=1', 'model.test_cfg.score_thr=0.0'
                                   ], 'coco/bbox_mAP_50'),
        # fewer proposals and RoI samples than the demo's (the behaviour is the same, the RoI and
        # mask heads' work a fraction)
        ('mask_rcnn_pvt_t', [
            'train_cfg.max_epochs=1', 'model.test_cfg.rcnn.score_thr=0.0',
            'model.test_cfg.rcnn.max_per_img=20', 'model.test_cfg.rpn.max_per_img=100',
            'model.train_cfg.rpn_proposal.max_per_img=200', 'model.train_cfg.rcnn.sampler.num=64'
        ], 'coco/segm_mAP_50'),
        ('sem_fpn_pvt_t', ['train_cfg.max_iters=2', 'train_cfg.val_interval=2'], 'mIoU'),
        ('detr_pvt_t', ['train_cfg.max_epochs=1'], 'coco/bbox_mAP_50'),
    ])  # (retinanet_pvt_t: --full, the quick run's model on larger images; retinanet_pvt_v2_b0:
#     trained twice by the Figure 5 test)
def test_demo_trains_evaluates_and_draws(tiny_shapes, tmp_path, config, options, metric,
                                         monkeypatch):
    # the default run and --full choose their configs; the others are named
    choice = [] if config == 'retinanet_pvt_t_quick' else ['--config', f'configs/demo/{config}.py']
    # in-process (the terminal's quietness in a real process: the test after this one)
    result = run_main('demo.py', demo_command(tiny_shapes, tmp_path, *choice, options=options)[1:])
    out = result.stdout
    assert_quiet(result)
    assert f'[demo] training {config}.py (' in out
    summary = out[out.index('Final metrics'):]
    assert metric in summary
    assert f'predictions: {tmp_path / "predictions.png"}' in summary
    # one row of the 4 validation images, each under its caption strip; mmdet's and mmseg's
    # drawings put ground truth and prediction side by side, the captions name the two halves
    picture = cv2.imread(str(tmp_path / 'predictions.png'))
    drawing = cv2.imread(str(sorted((tmp_path / 'predictions').rglob('*.png'))[0]))
    assert drawing.shape[:2] == (96, 2 * 128)
    tile_width = round(drawing.shape[1] * 256 / drawing.shape[0])
    assert picture.shape == (CAPTION_HEIGHT + 256, 4 * tile_width, 3)
    for i in range(4):
        strip = picture[:CAPTION_HEIGHT, i * tile_width:(i + 1) * tile_width]
        assert caption_has_text(strip) == [True, True]
    monkeypatch.setenv('MMPVT_DEMO_DATA', f'{tiny_shapes}/')
    model_options = dict(o.split('=') for o in options if o.startswith('model.'))
    check_image_demo_draws(config, tmp_path, tiny_shapes, {
        k: ast.literal_eval(v)
        for k, v in model_options.items()
    })


def check_image_demo_draws(config, work_dir, data_root, cfg_options):
    """tools/image_demo.py's code path on the model just trained: one drawing per image, the
    image's size, with something drawn on it (score_thr 0: a 1-epoch model scores low)."""
    from mmpvt.apis import find_resume_checkpoint
    from mmpvt.apis.inference import draw_predictions
    image = sorted((data_root / 'images' / 'validation').glob('*.png'))[0]
    drawn, _ = draw_predictions(
        str(image), f'{REPO}/configs/demo/{config}.py',
        weights=find_resume_checkpoint(str(work_dir)), out_dir=str(work_dir / 'image_demo'),
        score_thr=0.0, cfg_options=cfg_options)
    assert drawn == [str(work_dir / 'image_demo' / 'vis' / image.name)]
    original, picture = cv2.imread(str(image)), cv2.imread(drawn[0])
    assert picture.shape == original.shape and not np.array_equal(picture, original)


def test_default_demo_is_quiet_and_says_each_phase(tiny_shapes, tmp_path):
    """`make demo`'s run (the quick config), 1 epoch on a copy of the tiny data made by the demo
    itself: the phase lines and mmengine's progress lines, nothing else; the rest is in the log."""
    data = tmp_path / 'shapes'
    result = run_command(
        demo_command(
            data, tmp_path / 'work', options=[
                'train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=8',
                'test_dataloader.dataset.indices=4', 'model.test_cfg.score_thr=0.0'
            ]))
    assert_quiet(result)
    lines = result.stdout.splitlines()
    starts = [next(i for i, line in enumerate(lines) if line.startswith(p)) for p in PHASES]
    assert starts == sorted(starts), result.stdout  # in this order
    assert lines[starts[0]].endswith(f'-> {data}')
    assert lines[starts[3]].endswith(f'-> {tmp_path / "work" / "predictions.png"}')
    assert any('Epoch(train) [1][2/2]' in line for line in lines)
    # everything before the summary: phase lines and mmengine progress lines only
    assert all(
        line.startswith('[demo] ') or 'Epoch(' in line for line in lines[:starts[4] - 1]
        if line.strip()), result.stdout
    assert set(lines[starts[4] - 1]) == {'='}
    summary = result.stdout[result.stdout.index('Final metrics'):]
    log_file = summary.split('log:')[1].split()[0]
    log = open(log_file).read()
    assert 'Config:' in log and 'Hooks will be executed' in log
    assert 'loading annotations into memory' in log  # pycocotools' prints, into the log
    assert 'checkpoint:  ' in summary and 'coco/bbox_mAP_50' in summary


def test_help_documents_the_longer_run():
    result = run_main('demo.py', ['--help'])
    assert '--full' in result.stdout and 'configs/demo/retinanet_pvt_t.py' in result.stdout
    bad = run_main('demo.py', ['--full', '--config', 'x.py'], check=False)
    assert bad.returncode == 2 and '--full or --config, not both' in bad.stderr


def start_demo(data, work_dir, env=None):
    """tools/demo.py in its own process group (like a terminal's foreground job), 2 epochs, with
    the configs' dataloader workers (they get the Ctrl-C too)."""
    cmd = [
        sys.executable, 'tools/demo.py', '--data',
        str(data), '--work-dir',
        str(work_dir), '--cfg-options', 'train_dataloader.batch_size=4', 'train_cfg.max_epochs=2'
    ]
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    # SIGINT back to its default in the child: a shell's background job (this test run's parent,
    # maybe) ignores it, and Python would then never raise KeyboardInterrupt
    return subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt_after(proc, path, timeout=240):
    """Ctrl-C (SIGINT to the process group) once `path` exists; returns (stdout, stderr)."""
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGINT)
    return proc.communicate(timeout=120)


def test_ctrl_c_says_how_to_resume_and_resume_finishes(tiny_shapes, tmp_path):
    work_dir = tmp_path / 'work'
    proc = start_demo(tiny_shapes, work_dir)
    out, err = interrupt_after(proc, work_dir / 'epoch_1.pth')
    assert proc.returncode == 130
    assert 'Traceback' not in err and 'KeyboardInterrupt' not in err, err
    hint = [line for line in err.splitlines() if 'interrupted' in line]
    assert hint == [
        '[demo] interrupted; continue from the last checkpoint with: python '
        f'tools/demo.py --data {tiny_shapes} --work-dir {work_dir} --cfg-options '
        'train_dataloader.batch_size=4 train_cfg.max_epochs=2 --resume'
    ], err
    # the hint's command continues from the last checkpoint (epoch 1) to the end
    resumed = run_command([
        'tools/demo.py', '--data',
        str(tiny_shapes), '--work-dir',
        str(work_dir), '--cfg-options', 'train_dataloader.batch_size=4', 'train_cfg.max_epochs=2',
        '--resume'
    ])
    assert f'[demo] training: resuming from {work_dir / "epoch_"}' in resumed.stdout
    assert 'Epoch(train) [2][2/2]' in resumed.stdout and 'Final metrics' in resumed.stdout
    assert_quiet(resumed)


def test_resume_hint_names_the_command_that_was_run(monkeypatch):
    tool = load_tool('demo')
    monkeypatch.delenv('MMPVT_DEMO_VIA', raising=False)
    assert tool.resume_command(['--full']) == 'python tools/demo.py --full --resume'
    assert tool.resume_command(['--resume', '--data', 'my data']) == \
        "python tools/demo.py --data 'my data' --resume"
    monkeypatch.setenv('MMPVT_DEMO_VIA', 'make')  # the Makefile's demo target sets it
    assert tool.resume_command([]) == 'make demo ARGS=--resume'
    assert tool.resume_command(['--full']) == "make demo ARGS='--full --resume'"


def test_terminal_filter_drops_only_known_third_party_warnings():
    import logging

    from mmpvt_tools.demo import _ConsoleFilter

    def record(message, level=logging.WARNING, path='/x/mmengine/logging/logger.py'):
        return logging.LogRecord('runner', level, path, 1, message, None, None)

    keep = _ConsoleFilter().filter
    assert not keep(record('"FileClient" will be deprecated in future. Please use io ...'))
    assert not keep(record('"HardDiskBackend" is the alias of "LocalBackend" and the former ...'))
    assert not keep(
        record('The testing results of the whole dataset is empty.', logging.ERROR,
               '/x/mmdet/evaluation/metrics/coco_metric.py'))
    # the same words from another module, and any other warning, are shown
    assert keep(record('"FileClient" will be deprecated in future.', path='/x/mmpvt/apis/x.py'))
    assert keep(record('The testing results of the whole dataset is empty.', logging.ERROR))
    assert keep(record('--resume: checkpoint not found'))
    # INFO: mmengine's progress lines only
    assert keep(record('Epoch(train)  [1][10/75]  lr: 4.0e-04  eta: 0:03:00', logging.INFO))
    assert keep(record('Iter(train) [ 10/250]  lr: 4.0e-04', logging.INFO))
    assert not keep(record('Config:\nmodel = dict(...)', logging.INFO))
    assert not keep(record('Hooks will be executed in the following order:', logging.INFO))


def test_tool_silences_only_the_known_python_warnings():
    import warnings
    tool = load_tool('demo')
    pkg = ('pkg_resources is deprecated as an API. See https://setuptools.pypa.io/en/latest/'
           'pkg_resources.html.')
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter('always')
        tool.silence_known_warnings()
        for module in ('mmengine.utils.package_utils', 'importlib', 'mmpvt.models', 'mylib'):
            warnings.warn_explicit(pkg, UserWarning, 'x.py', 1, module=module)
        warnings.warn_explicit(
            'The draw is False, it means that the hook for visualization '
            'will not take effect.', UserWarning, 'x.py', 1,
            module='mmseg.engine.hooks.visualization_hook')
        warnings.warn_explicit(
            'Warning: The bbox is out of bounds, the drawn bbox may not be in '
            'the image', UserWarning, 'x.py', 1, module='mmengine.visualization.visualizer')
        warnings.warn_explicit('something else', UserWarning, 'x.py', 1, module='mmengine.x')
    assert sorted((str(w.message)[:14], w.filename) for w in caught) == \
        [('pkg_resources ', 'x.py'), ('pkg_resources ', 'x.py'), ('something else', 'x.py')]


# ---- the picture ----------------------------------------------------------------------------
def test_prediction_grid_captions_each_half_of_each_tile(tmp_path):
    paths = []
    for i, colour in enumerate([(0, 0, 255), (0, 255, 0), (255, 0, 0)]):
        drawing = np.zeros((60, 160, 3), np.uint8)  # "ground truth | prediction", 80 px each
        drawing[:] = colour
        paths.append(str(tmp_path / f'{i}.png'))
        cv2.imwrite(paths[-1], drawing)
    out = prediction_grid(paths, str(tmp_path / 'grid.png'), columns=2, tile_height=120)
    grid = cv2.imread(out)
    assert grid.shape == (2 * (CAPTION_HEIGHT + 120), 2 * 320, 3)  # 2 rows of 2 tiles
    for row in range(2):
        top = row * (CAPTION_HEIGHT + 120)
        for col in range(2 if row == 0 else 1):
            strip = grid[top:top + CAPTION_HEIGHT, col * 320:(col + 1) * 320]
            assert caption_has_text(strip) == [True, True]
            image = grid[top + CAPTION_HEIGHT:top + CAPTION_HEIGHT + 120, col * 320:(col + 1) * 320]
            assert np.abs(image.astype(int) - cv2.imread(paths[2 * row + col])[0, 0]).max() <= 1
    # the captions name the parts: unlike each other, unlike a blank strip
    first = grid[:CAPTION_HEIGHT, :320]
    assert not np.array_equal(first[:, :160], first[:, 160:])
    plain = prediction_grid(paths[:1], str(tmp_path / 'plain.png'), captions=None)
    assert cv2.imread(plain).shape == (256, 4 * 683, 3)


# ---- the demo data from any config ----------------------------------------------------------
DATASETS = f'{REPO}/configs/_base_/datasets'
USER_CONFIGS = {
    'det': [
        'mmdet::_base_/models/retinanet_r50_fpn.py', f'{DATASETS}/demo_shapes_det.py',
        'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
    ],
    'instance': [
        'mmdet::_base_/models/mask-rcnn_r50_fpn.py', f'{DATASETS}/demo_shapes_instance.py',
        'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
    ],
    'seg': [
        'mmseg::_base_/models/fpn_r50.py', f'{DATASETS}/demo_shapes_seg.py',
        'mmseg::_base_/schedules/schedule_80k.py', 'mmseg::_base_/default_runtime.py'
    ],
}


def user_config(tmp_path, kind):
    """A config of "one's own project" that swaps COCO/ADE20K for the demo data."""
    path = tmp_path / f'my_{kind}.py'
    path.write_text(f'_base_ = {USER_CONFIGS[kind]!r}\n')
    return str(path)


def build_dataset(cfg, split):
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import DATASETS as REGISTRY
    else:
        from mmdet.registry import DATASETS as REGISTRY
    return REGISTRY.build(cfg[f'{split}_dataloader'].dataset)


@pytest.mark.parametrize('kind', list(USER_CONFIGS))
@pytest.mark.parametrize('slash', ['/', ''])
def test_any_config_reads_the_demo_data_through_the_dataset_base(tiny_shapes, tmp_path, monkeypatch,
                                                                 kind, slash):
    from mmengine.config import Config

    import mmpvt  # noqa: F401  (AlignResize in the seg pipeline)
    monkeypatch.setenv('MMPVT_DEMO_DATA', f'{tiny_shapes}{slash}')
    cfg = Config.fromfile(user_config(tmp_path, kind))
    assert cfg.data_root == f'{tiny_shapes}/'
    train, val = build_dataset(cfg, 'train'), build_dataset(cfg, 'test')
    assert (len(train), len(val)) == (8, 4)
    classes = demo_data.CLASSES if kind != 'seg' else ('background', *demo_data.CLASSES)
    assert tuple(train.metainfo['classes']) == classes
    item = train[0]
    sample = item['data_samples']
    if kind == 'seg':
        labels = sample.gt_sem_seg.data
        assert labels.shape[-2:] == item['inputs'].shape[-2:]
        assert set(labels.unique().tolist()) <= {0, 1, 2, 3, 4}  # background is a class
    else:
        assert len(sample.gt_instances) > 0 and ('masks' in sample.gt_instances) == \
            (kind == 'instance')
        assert cfg.test_evaluator.ann_file == \
            f'{tiny_shapes}/annotations/instances_validation.json'
        assert os.path.isfile(cfg.test_evaluator.ann_file)


def test_docs_example_config_trains_on_the_demo_data(tiny_shapes, tmp_path, monkeypatch):
    """The own-project config of docs/demo.md, as written there: builds, and reads the data."""
    from mmengine.config import Config

    from .helpers import build_model
    docs = (pathlib.Path(REPO) / 'docs' / 'demo.md').read_text()
    block = next(b for b in docs.split('```python\n')[1:] if 'my_project/configs' in b)
    path = tmp_path / 'retinanet_pvt_s_shapes.py'
    path.write_text(block.split('```')[0].replace('<mmpvt>', REPO))
    monkeypatch.setenv('MMPVT_DEMO_DATA', str(tiny_shapes))
    cfg = Config.fromfile(str(path))
    model = build_model(cfg)
    assert model.bbox_head.num_classes == 4 and type(model.backbone).__name__ == 'PVT'
    assert len(build_dataset(cfg, 'train')) == 8


def test_dataset_base_defaults_to_data_shapes(monkeypatch):
    from mmengine.config import Config
    monkeypatch.delenv('MMPVT_DEMO_DATA', raising=False)
    cfg = Config.fromfile(f'{DATASETS}/demo_shapes_det.py')
    assert cfg.data_root == 'data/shapes/'
    assert cfg.train_dataloader.dataset.data_root == 'data/shapes/'


DEMO_DIR = pathlib.Path(REPO) / 'configs' / 'demo'
DEMO_CONFIGS = sorted(p.name for p in DEMO_DIR.glob('*.py'))


@pytest.mark.parametrize('name', DEMO_CONFIGS)
def test_demo_configs_take_their_data_from_the_dataset_bases(name, monkeypatch, tmp_path):
    """One place says where and what the demo data is: the demo configs name no path of it."""
    from mmengine.config import Config
    text = (DEMO_DIR / name).read_text()
    assert 'MMPVT_DEMO_DATA' not in text and 'instances_' not in text and 'images/' not in text
    monkeypatch.setenv('MMPVT_DEMO_DATA', str(tmp_path))
    cfg = Config.fromfile(str(DEMO_DIR / name))
    kind = 'seg' if name.startswith('sem_fpn') else 'cls' if name.startswith('cls_') else 'det'
    base = Config.fromfile(f'{DATASETS}/demo_shapes_{kind}.py')
    for split in ('train', 'test'):
        dataset, expected = cfg[f'{split}_dataloader'].dataset, base[f'{split}_dataloader'].dataset
        for key in ('data_root', 'data_prefix', 'metainfo', 'ann_file'):
            assert dataset.get(key) == expected.get(key), (split, key)
    assert cfg.data_root == f'{tmp_path}/'


def test_quick_demo_is_the_full_demo_on_smaller_images_for_fewer_epochs():
    from mmengine.config import Config
    quick = Config.fromfile(f'{REPO}/configs/demo/retinanet_pvt_t_quick.py')
    full = Config.fromfile(f'{REPO}/configs/demo/retinanet_pvt_t.py')
    # the one change to the model: GroupNorm in the neck and the head
    norms = quick.model.neck.pop('norm_cfg'), quick.model.bbox_head.pop('norm_cfg')
    assert [n.type for n in norms] == ['GN', 'GN']
    assert quick.model == full.model
    assert quick.train_dataloader.dataset.ann_file == full.train_dataloader.dataset.ann_file
    assert quick.img_scale[0] < full.img_scale[0]
    assert quick.train_cfg.max_epochs < full.train_cfg.max_epochs


# ---- the classification demo and a detector that starts from its backbone ------------------
def test_classifier_demo_then_a_detector_from_its_backbone(tiny_shapes, tmp_path, monkeypatch):
    """configs/demo/cls_pvt_v2_b0.py through tools/demo.py (1 epoch on the tiny data's crops),
    its checkpoint through image_demo (top-k printed) and test.py (--out), then
    retinanet_pvt_v2_b0_from_cls.py starting from that checkpoint's backbone."""
    cls_dir = tmp_path / 'cls'
    result = run_main(
        'demo.py',
        demo_command(tiny_shapes, cls_dir, '--config', 'configs/demo/cls_pvt_v2_b0.py',
                     options=['train_cfg.max_epochs=1'])[1:])
    assert_quiet(result)
    assert '[demo] training cls_pvt_v2_b0.py (1 epoch, batch 4)' in result.stdout
    summary = result.stdout[result.stdout.index('Final metrics'):]
    assert re.search(r'\n  accuracy/top1  \d+\.\d\d %\n', summary)
    assert (f'predictions: {cls_dir / "predictions.png"}  (each tile: ground truth and '
            'prediction)') in summary and (cls_dir / 'predictions.png').is_file()
    checkpoint = find_checkpoint(cls_dir)

    crop = sorted((tiny_shapes / 'crops' / 'validation').glob('*.png'))[0]
    shown = run_main('image_demo.py', [
        str(crop), 'configs/demo/cls_pvt_v2_b0.py', '--weights', checkpoint, '--out-dir',
        str(tmp_path / 'image_demo')
    ], env={
        'MMPVT_DEMO_DATA': f'{tiny_shapes}/'
    }).stdout
    ranks = [line.split()[:2] for line in shown.splitlines() if line.startswith('  ')]
    assert [r[0] for r in ranks] == ['1.', '2.', '3.', '4.']  # 4 classes: fewer than 5
    assert sorted(r[1] for r in ranks) == sorted(demo_data.CLASSES)
    assert (tmp_path / 'image_demo' / 'vis' / crop.name).is_file()

    tested = run_main('test.py', [
        'configs/demo/cls_pvt_v2_b0.py', checkpoint, '--work-dir',
        str(tmp_path / 'test'), '--out',
        str(tmp_path / 'r.pkl'), '--cfg-options', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ], env={
        'MMPVT_DEMO_DATA': f'{tiny_shapes}/'
    }).stdout
    assert "'accuracy/top1'" in tested and (tmp_path / 'r.pkl').is_file()

    det = run_main(
        'demo.py',
        demo_command(tiny_shapes, tmp_path / 'det', '--config',
                     'configs/demo/retinanet_pvt_v2_b0_from_cls.py',
                     options=['train_cfg.max_epochs=1', 'model.test_cfg.score_thr=0.0'])[1:],
        env={'MMPVT_DEMO_BACKBONE': checkpoint})
    assert_quiet(det)
    assert 'coco/bbox_mAP_50' in det.stdout[det.stdout.index('Final metrics'):]

    # before training, the detector's backbone is the classifier's, tensor for tensor
    from mmengine.config import Config

    from .helpers import build_model
    monkeypatch.setenv('MMPVT_DEMO_BACKBONE', checkpoint)
    cfg = Config.fromfile(f'{REPO}/configs/demo/retinanet_pvt_v2_b0_from_cls.py')
    detector = build_model(cfg)
    detector.init_weights()
    import torch
    state = torch.load(checkpoint, map_location='cpu', weights_only=False)['state_dict']
    backbone = detector.backbone.state_dict()
    assert set(backbone) == {k[len('backbone.'):] for k in state if k.startswith('backbone.')}
    assert all(torch.equal(v, state[f'backbone.{k}']) for k, v in backbone.items())


def find_checkpoint(work_dir):
    from mmpvt.apis import find_resume_checkpoint
    path = find_resume_checkpoint(str(work_dir))
    assert path is not None, f'no checkpoint in {work_dir}'
    return path


# ---- the paper's Figure 5 in miniature ------------------------------------------------------
def test_figure5_trains_the_classifier_first_when_its_checkpoint_is_missing(tmp_path, monkeypatch):
    # the classifier run itself is the classifier demo's (test_classifier_demo_then_a_detector_
    # from_its_backbone); here: it is started, with its config and work dir, before any detector
    from mmpvt_tools import demo, figure5
    started, said = [], []
    monkeypatch.setattr(
        demo, 'run_demo', lambda config, data_root, work_dir, **kwargs: started.append(
            (config, data_root, work_dir, kwargs['resume'])))
    checkpoint = tmp_path / 'cls' / 'epoch_10.pth'
    with pytest.raises(FileNotFoundError, match=f'the classifier run left no {checkpoint}'):
        figure5.run_figure5('data', str(tmp_path / 'fig5'), str(tmp_path / 'cls'),
                            f'{REPO}/configs/demo', say=said.append)
    assert started == [(f'{REPO}/configs/demo/cls_pvt_v2_b0.py', 'data', str(tmp_path / 'cls'),
                        False)]
    assert said == [
        f'figure 5, 1/3: training the demo classifier (cls_pvt_v2_b0.py): no '
        f'{checkpoint} yet'
    ]


def demo_classifier_checkpoint(path):
    """A checkpoint of the demo classifier (its initial weights) at `path`, where Figure 5 looks
    for the classifier's last epoch."""
    import torch
    from mmengine.config import Config

    from .helpers import build_model
    torch.manual_seed(0)
    model = build_model(Config.fromfile(f'{REPO}/configs/demo/cls_pvt_v2_b0.py'))
    model.init_weights()
    path.parent.mkdir(parents=True)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)


def test_figure5_trains_both_detectors_from_the_classifier_and_draws_what_they_logged(
        tiny_shapes, tmp_path):
    """`tools/demo.py --figure5` with the classifier's checkpoint in place (as the classifier
    demo leaves it in ./work_dirs/cls_pvt_v2_b0), the detectors for 2 epochs: each phase on the
    terminal, the pretrained detector loads the classifier's checkpoint, curves.png is drawn,
    and the printed table holds the AP each run logged per epoch."""
    work_dir = tmp_path / 'fig5'
    checkpoint = tmp_path / 'work_dirs' / 'cls_pvt_v2_b0' / 'epoch_10.pth'
    demo_classifier_checkpoint(checkpoint)
    result = run_command([
        f'{REPO}/tools/demo.py', '--figure5', '--data',
        str(tiny_shapes), '--work-dir',
        str(work_dir), '--cfg-options', *FAST, 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False', 'train_cfg.max_epochs=2',
        'model.test_cfg.score_thr=0.0'
    ], cwd=str(tmp_path))
    assert_quiet(result)
    phases = [
        line for line in result.stdout.splitlines()
        if line.startswith('[demo] figure 5') or line.startswith('[demo] drawing val')
    ]
    assert phases == [
        f'[demo] figure 5, 1/3: reusing the demo classifier {checkpoint}',
        '[demo] figure 5, 2/3: RetinaNet + PVTv2-B0, backbone from the demo classifier',
        '[demo] figure 5, 3/3: RetinaNet + PVTv2-B0, backbone from scratch',
        f'[demo] drawing validation AP per epoch of both -> {work_dir / "curves.png"}'
    ]
    assert result.stdout.count('validating after every epoch) on CPU') == 2
    assert cv2.imread(str(work_dir / 'curves.png')) is not None

    logged = {}
    for name in ('from_classifier', 'from_scratch'):
        (log, ) = work_dir.glob(f'{name}/*/*.log')
        loads = re.search(rf'PVTv2: loaded \d+ tensors .* from {re.escape(str(checkpoint))}\n',
                          log.read_text())
        assert bool(loads) == (name == 'from_classifier'), name
        (scalars, ) = work_dir.glob(f'{name}/*/vis_data/scalars.json')
        records = [json.loads(line) for line in scalars.read_text().splitlines()]
        validated = [r for r in records if 'coco/bbox_mAP' in r]
        assert [r['step'] for r in validated] == [1, 2], name  # its own two epochs, once each
        logged[name] = {r['step']: (r['coco/bbox_mAP'], r['coco/bbox_mAP_50']) for r in validated}
    # the table: the logged values (COCO rounds them to 3 decimals), gap = pretrained - scratch
    table = result.stdout[result.stdout.index('epoch  AP cls'):].splitlines()
    for epoch, row in zip((1, 2), table[1:3]):
        (a, a50), (b, b50) = logged['from_classifier'][epoch], logged['from_scratch'][epoch]
        assert row.split() == [
            str(epoch), f'{a:.3f}', f'{b:.3f}', f'{a - b:+.3f}', f'{a50:.3f}', f'{b50:.3f}',
            f'{a50 - b50:+.3f}'
        ], row
    assert table[3].startswith('final gap: AP ') and f'curves:      {work_dir / "curves.png"}' \
        in result.stdout


def test_figure5_runs_its_own_configs():
    bad = run_main('demo.py', ['--figure5', '--config', 'x.py'], check=False)
    assert bad.returncode == 2 and '--figure5 runs its own configs' in bad.stderr
