"""What several test modules use: paths, running the tools, building models from configs,
comparing numeric outputs of two paths (ONNX vs eager, mmpvt vs a reference), and the official
checkpoints as facts (key tables, random weights in their layout, backbones holding them).

Comparing detections: two numeric paths agree on every value to float32 noise, but the *order* of
detections whose scores differ by less than that noise is decided by the noise, and it changes
with the CPU (AVX-512 on one machine, AVX2 on another). A detection list is therefore compared as
a set of matched pairs, never by rank: see :func:`match_detections`.
"""
import contextlib
import copy
import functools
import importlib.util
import io
import json
import logging
import math
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import traceback
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch
from mmengine.config import Config
from scipy.optimize import linear_sum_assignment

from mmpvt.models.builder import registry_of
from mmpvt.torch_compat import DYNAMIC_EXPORT_TORCH, has_dynamic_export

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)

# The tolerances of the ONNX-vs-predict comparisons: boxes within 1e-3 (relative and absolute,
# pixels), scores within 1e-4 absolute. Measured errors are 20-100x smaller (docs/deployment.md).
# Features of a newer torch than the oldest supported stack's (mmpvt refuses them there with one
# line, which tests/deploy/test_export.py checks on every torch).
needs_dynamic_export = pytest.mark.skipif(
    not has_dynamic_export(),
    reason=f'torch.export with Dim.DYNAMIC and the dynamo ONNX exporter need torch >= '
    f'{DYNAMIC_EXPORT_TORCH}, this is torch {torch.__version__}')


def cpu_autocast_supports(dtype: torch.dtype) -> bool:
    """Whether torch.autocast('cpu', dtype=dtype) computes in `dtype` (torch 2.1: bfloat16
    only; it warns and disables itself, or raises, for float16). Decided here, apart from
    mmpvt.torch_compat.autocast_supports, which the preflight's tests check."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            with torch.autocast('cpu', dtype=dtype):
                pass
        except RuntimeError:
            return False
    return not caught


needs_cpu_fp16_autocast = pytest.mark.skipif(
    not cpu_autocast_supports(torch.float16),
    reason=f'CPU autocast in float16 needs a newer torch than {torch.__version__} (bfloat16 only)')

BOX_TOL = 1e-3
SCORE_TOL = 1e-4


def run_command(args: Sequence[str], env: dict = None, timeout: int = 600, check: bool = True,
                cwd: str = REPO) -> subprocess.CompletedProcess:
    """Run a command from the repository root (or `cwd`) with this interpreter; `args[0]` ending
    in .py is run by it. With `check`, a non-zero exit is an AssertionError showing the output's
    end."""
    full_env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1', **(env or {}))
    full_env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + full_env.get('PATH', '')
    cmd = [sys.executable, *args] if args[0].endswith('.py') else list(args)
    result = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n'
                             f'{result.stderr[-3000:]}')
    return result


@functools.lru_cache(maxsize=None)
def tool_module(relpath: str):
    """tools/<relpath> (``'test.py'``, ``'deploy/export_onnx.py'``) loaded as a module, once per
    session: its ``main(argv)`` is the tool without the interpreter around it."""
    spec = importlib.util.spec_from_file_location('_mmpvt_tool_' + re.sub(r'\W', '_', relpath),
                                                  os.path.join(REPO, 'tools', relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_tool(name: str):
    """tools/<name>.py as a module (its functions, without running it)."""
    return tool_module(f'{name}.py')


def write_run(work_dir, starts) -> str:
    """A work dir as mmengine leaves it: one <timestamp>/vis_data/scalars.json per start (`starts`:
    {timestamp: [(epoch, mAP), ...]}), each validation result (coco/bbox_mAP = mAP,
    coco/bbox_mAP_50 = 2 mAP, at step = epoch) after a training record of that epoch."""
    for stamp, results in starts.items():
        folder = work_dir / stamp / 'vis_data'
        folder.mkdir(parents=True)
        lines = []
        for epoch, value in results:
            lines.append(
                dict(lr=1e-4, loss=1.0 / epoch, epoch=epoch, iter=10 * epoch, step=10 * epoch))
            lines.append({'coco/bbox_mAP': value, 'coco/bbox_mAP_50': 2 * value, 'step': epoch})
        (folder / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in lines))
    return str(work_dir)


def _manager_classes():
    """mmengine's global "current instance" registries (DefaultScope, MMLogger, MessageHub,
    Visualizer and its subclasses: one per class) that a Runner or an inferencer adds to."""
    from mmengine.utils import ManagerMixin
    classes, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if '_instance_dict' in vars(cls):
            classes.append(cls)
    return classes


@contextlib.contextmanager
def tool_process_state(argv0: str, args: Sequence[str], env: dict = None):
    """What a tool's own process would start from and throw away, around an in-process run: the
    repository as the working directory, `env` added to the environment, ``sys.argv``, none of
    mmengine's current instances (scope, logger, message hub, visualizer); after it,
    the environment, working directory, ``sys.argv``/``sys.path``, torch's and OpenCV's thread
    counts, torch's determinism switch, the multiprocessing start method, warnings filters, the
    root logger and mmengine's current scope/logger/message hub/visualizer are as before (the
    loggers the run made are closed)."""
    import cv2
    managers = {cls: dict(cls._instance_dict) for cls in _manager_classes()}
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_argv, saved_path = list(sys.argv), list(sys.path)
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    start_method = multiprocessing.get_start_method(allow_none=True)
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    repo_entries = _repository_outputs()
    try:
        with warnings.catch_warnings():
            for cls in managers:  # as in a new process: no current scope, logger, visualizer
                cls._instance_dict.clear()
            os.environ.update(env or {})
            os.chdir(REPO)
            sys.argv = [argv0, *args]
            yield
        left = sorted(_repository_outputs() - repo_entries)
        if left:  # the run's default folders (work_dirs/<config>, ...) are in the repository
            for path in left:
                shutil.rmtree(os.path.join(REPO, path), ignore_errors=True)
            raise AssertionError(f'{argv0} {args} wrote into the repository: {", ".join(left)}; '
                                 'give it an output folder under tmp_path (--work-dir, ...)')
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.argv[:], sys.path[:] = saved_argv, saved_path
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
        torch.use_deterministic_algorithms(deterministic)
        if multiprocessing.get_start_method(allow_none=True) != start_method:
            multiprocessing.set_start_method(start_method, force=True)
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        for cls in _manager_classes():  # classes first imported by the run had none before
            before = managers.get(cls, {})
            for name, instance in cls._instance_dict.items():
                if name not in before and isinstance(instance, logging.Logger):
                    for handler in instance.handlers:
                        handler.close()
            cls._instance_dict.clear()
            cls._instance_dict.update(before)


# Where a tool run from the repository writes when not told otherwise (mmengine's default
# work_dir, the demo's outputs); the suite keeps the repository as it found it.
REPOSITORY_OUTPUT_FOLDERS = ('work_dirs', 'data', 'outputs')


def _repository_outputs() -> set:
    """What the tools' default output folders in the repository hold: {'work_dirs/x', ...}."""
    return {
        f'{folder}/{name}'
        for folder in REPOSITORY_OUTPUT_FOLDERS if os.path.isdir(os.path.join(REPO, folder))
        for name in os.listdir(os.path.join(REPO, folder))
    }


class Hung(BaseException):
    """Raised by :func:`fails_if_it_hangs`; not an Exception (nor the OSError that TimeoutError
    is), so that no ``except`` of the code under test takes it for its own error."""


@contextlib.contextmanager
def fails_if_it_hangs(seconds: int):
    """Within the block, a call still blocked after `seconds` (an open of a FIFO that no one
    writes) raises :class:`Hung`: SIGALRM interrupts the system call, and the handler's
    exception ends it. Main thread only, as pytest runs tests."""

    def hung(signum, frame):
        raise Hung(f'still running after {seconds} s')

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_main(relpath: str, args: Sequence[str], env: dict = None,
             check: bool = True) -> subprocess.CompletedProcess:
    """``tools/<relpath> ARGS`` run as its ``main(args)`` in this process (see
    :func:`tool_process_state`; any fixture scope), answered as :func:`run_command` answers: the
    exit status (main's return value, a SystemExit's code, 1 with the traceback on stderr for an
    uncaught exception, as the interpreter does) and what it wrote to sys.stdout / sys.stderr."""
    main = tool_module(relpath).main
    args = [str(a) for a in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    with tool_process_state(os.path.join('tools', relpath), args, env), \
            contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(args)
        except SystemExit as e:
            code = e.code
            if isinstance(code, str):
                print(code, file=sys.stderr)
                code = 1
        except Exception:  # noqa: BLE001 -- the interpreter's answer to an uncaught exception
            traceback.print_exc()
            code = 1
    result = subprocess.CompletedProcess(['tools/' + relpath, *args], code or 0, stdout.getvalue(),
                                         stderr.getvalue())
    if check and result.returncode != 0:
        raise AssertionError(f'tools/{relpath} {args} failed ({result.returncode}):\n'
                             f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}')
    return result


def build_model(cfg):
    """The model of an mmengine Config; deep-copied because some heads (DETRHead) write into
    the config dict they are given."""
    return registry_of(cfg).build(copy.deepcopy(cfg.model))


# ImageNet mean / std, RGB on 0..255 pixels: the classifiers' data preprocessor.
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]

# How each family classifies (tests/data/classification_facts.md Sec. 1): v1 the class token
# after the final norm, v2 the stage-4 tokens averaged: (backbone arguments, neck).
CLASSIFIER_BODY = {
    'PVT': (dict(out_type='cls_token'), None),
    'PVTv2': (dict(out_indices=(3, )), dict(type='GlobalAveragePooling'))
}


def classifier_config(arch: str, num_classes: int = 1000, **backbone):
    """An mmpretrain config (default_scope 'mmpretrain') of the `arch` ImageNet classifier
    (:data:`CLASSIFIER_BODY`) with a LinearClsHead as wide as the official checkpoint's head."""
    width = dict(official_key_table(arch))['head.weight'][1]  # C4
    body_args, neck = CLASSIFIER_BODY[family(arch)]
    body = dict(type=f'mmpvt.{family(arch)}', arch=arch, **body_args, **backbone)
    model = dict(type='ImageClassifier', backbone=body, neck=neck,
                 head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=width),
                 data_preprocessor=dict(num_classes=num_classes, mean=MEAN, std=STD, to_rgb=True))
    return Config(dict(default_scope='mmpretrain', model=model))


def build_classifier(arch: str, num_classes: int = 1000, **backbone):
    return build_model(classifier_config(arch, num_classes, **backbone))


def segmentation_inputs(hw=(128, 160), num_classes=150, batch=2) -> dict:
    """A packed mmseg batch (what a dataloader gives ``data_preprocessor``): random uint8 images
    of size `hw` with random labels in [0, num_classes)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=hw, ori_shape=hw, pad_shape=hw))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *hw)))
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 256, (3, *hw), dtype=torch.uint8) for _ in range(batch)],
                data_samples=samples)


def max_abs_diff(a: Sequence, b: Sequence) -> float:
    """Largest absolute difference over two equally long sequences of tensors."""
    assert len(a) == len(b), (len(a), len(b))
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def detections_as_numpy(instances) -> Dict[str, np.ndarray]:
    """mmdet ``pred_instances`` (or a dict of arrays) as {'bboxes', 'scores', 'labels'[, 'masks']}
    numpy arrays."""
    get = instances.get if isinstance(instances, dict) else lambda k: getattr(instances, k, None)
    out = {}
    for key in ('bboxes', 'scores', 'labels', 'masks'):
        value = get(key)
        if value is not None:
            out[key] = value.numpy() if hasattr(value, 'numpy') else np.asarray(value)
    return out


def match_detections(got, expected, score_tol: float = SCORE_TOL, box_tol: float = BOX_TOL,
                     max_unmatched: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """Pair the detections of two paths that are the same detection; returns (i_got, i_expected).

    Two detections are the same when their labels are equal, their scores agree within
    `score_tol` and their boxes within `box_tol` (absolute + relative, per coordinate). Among such
    candidates the pairing minimises the total box error (an assignment, so it is one to one).
    This makes the comparison independent of the order of near-equal scores.

    A detection may stay unpaired only where a near-tie decides *membership* rather than order:
    its score lies within `score_tol` of the cut-off (the lowest score either path kept: a tie at
    max_per_img or at score_thr keeps one twin in one path and the other twin in the other). At
    most `max_unmatched` per side, so a broken path cannot pass as a pile of "ties". Everything
    else is an AssertionError saying which detections found no partner.
    """
    got, expected = detections_as_numpy(got), detections_as_numpy(expected)
    gb, gs, gl = got['bboxes'], got['scores'], got['labels']
    eb, es, el = expected['bboxes'], expected['scores'], expected['labels']
    compatible = (
        (gl[:, None] == el[None, :])
        & (np.abs(gs[:, None] - es[None, :]) <= score_tol)
        & np.all(
            np.abs(gb[:, None] - eb[None, :]) <= box_tol + box_tol * np.abs(eb[None, :]), axis=-1))
    box_error = np.abs(gb[:, None] - eb[None, :]).max(axis=-1) if len(gb) and len(eb) else \
        np.zeros((len(gb), len(eb)))
    cost = np.where(compatible, box_error, 1e9)
    rows, cols = linear_sum_assignment(cost)
    keep = compatible[rows, cols]
    rows, cols = rows[keep], cols[keep]
    cut_off = max(gs.min(initial=np.inf), es.min(initial=np.inf)) if len(gs) and len(es) else 0
    for name, scores, paired in (('got', gs, rows), ('expected', es, cols)):
        lonely = np.setdiff1d(np.arange(len(scores)), paired)
        off_tie = lonely[scores[lonely] > cut_off + score_tol]
        assert len(off_tie) == 0 and len(lonely) <= max_unmatched, (
            f'{len(lonely)} {name} detections have no partner (same label, score within '
            f'{score_tol}, box within {box_tol}); {len(off_tie)} of them are not at the cut-off '
            f'score {cut_off:.6f}: indices {lonely.tolist()}, scores {scores[lonely].tolist()}')
    return rows, cols


def assert_same_detections(got, expected, min_count: int = 50,
                           max_flipped_mask_fraction: float = 1e-4) -> None:
    """The deployment target, independent of the order of near-equal scores: every detection
    of one path is one of the other (:func:`match_detections`), and where both have masks, at most
    `max_flipped_mask_fraction` of the positive pixels differ (a pixel flips only where the pasted
    probability is within float32 noise of the mask threshold)."""
    rows, cols = match_detections(got, expected)
    assert len(rows) >= min_count, (len(rows), min_count)  # random heads: plenty to compare
    got, expected = detections_as_numpy(got), detections_as_numpy(expected)
    if 'masks' in got and 'masks' in expected:
        assert got['masks'].shape[1:] == expected['masks'].shape[1:]
        flipped = int((got['masks'][rows] != expected['masks'][cols]).sum())
        positive = int(expected['masks'][cols].sum())
        assert positive > 0 and flipped <= max_flipped_mask_fraction * positive, \
            (flipped, positive)


# ---- the official checkpoints, as facts (tests/data) -------------------------------------------
# tests/data holds copies of the facts of official_pvt_v{1,2}_checkpoint_keys.json: the key
# names and shapes of the authors' ImageNet checkpoints, in file order, per released variant.
KEY_TABLES = {
    'PVT': os.path.join(TESTS, 'data', 'official_pvt_v1_checkpoint_keys.json'),
    'PVTv2': os.path.join(TESTS, 'data', 'official_pvt_v2_checkpoint_keys.json')
}
# Entries of the ImageNet checkpoints that only the classifier uses (PVT v1: the class token, the
# final norm and the head; PVTv2: the head). v1's stage-4 position table also has a class-token
# row (50 = 1 + 7 x 7 positions), which a backbone does not keep.
CLASSIFIER_ONLY = {
    'PVT': re.compile(r'^(cls_token|norm\.(weight|bias)|head\.(weight|bias))$'),
    'PVTv2': re.compile(r'^head\.(weight|bias)$')
}


@functools.lru_cache(maxsize=None)
def read_key_table(family_name: str) -> Dict[str, List[Tuple[str, tuple]]]:
    """{variant: [(key, shape), ...]} of one family's official checkpoints."""
    with open(KEY_TABLES[family_name]) as f:
        return {k: [(name, tuple(shape)) for name, shape in v] for k, v in json.load(f).items()}


# The variants the authors released ImageNet weights of (the facts' variants, in their order),
# and those without released weights: the paper's Table 9 wider PVT-Small.
V1_ARCHS, V2_ARCHS = tuple(read_key_table('PVT')), tuple(read_key_table('PVTv2'))
UNRELEASED_ARCHS = {'small_wide': 'PVT'}


def family(arch: str) -> str:
    """The family of variant `arch` as the facts give it (independent of mmpvt's tables): the
    one whose official checkpoints include it, else :data:`UNRELEASED_ARCHS`."""
    found = [name for name in KEY_TABLES if arch in read_key_table(name)]
    found += [UNRELEASED_ARCHS[arch]] if arch in UNRELEASED_ARCHS else []
    assert len(found) == 1, f'variant {arch!r}: families {found}'
    return found[0]


def by_family(*archs, **marks):
    """pytest parameters over variant names whose ids say the family: 'PVT-tiny', 'PVTv2-b0'."""
    return [pytest.param(a, id=f'{family(a)}-{a}', **marks) for a in archs]


def size_id(value):
    """pytest ids: an (H, W) input size as 'HxW'; anything else as pytest writes it."""
    return 'x'.join(map(str, value)) if isinstance(value, tuple) else None


def official_key_table(arch: str) -> List[Tuple[str, tuple]]:
    return read_key_table(family(arch))[arch]


def official_backbone_params(arch: str) -> int:
    """The parameters of an official PVTv2 checkpoint of `arch` without its classifier head."""
    return sum(math.prod(s) for k, s in official_key_table(arch) if not k.startswith('head.'))


@functools.lru_cache(maxsize=None)
def repository_config(path: str) -> Config:
    """The config at `path` (relative to the repository), parsed once per session; shared: do not
    modify it (deep-copy it first)."""
    return Config.fromfile(os.path.join(REPO, path))


def release_backbone_shapes(arch: str) -> Dict[str, tuple]:
    """{key: shape} of an official checkpoint without its classifier-only entries."""
    return {k: s for k, s in official_key_table(arch) if not CLASSIFIER_ONLY[family(arch)].match(k)}


def random_official_state_dict(keys, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random tensors with the official names and shapes of `keys` ([(key, shape), ...]);
    LayerNorm scales near 1."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in keys:
        t = torch.randn(shape, generator=g) * 0.05
        if ('norm' in name) and name.endswith('weight'):
            t = 1.0 + t
        sd[name] = t
    return sd


@functools.lru_cache(maxsize=None)
def _official_weights(arch: str, seed: int):
    return random_official_state_dict(official_key_table(arch), seed)


def official_weights(arch: str, seed: int = 0) -> Dict[str, torch.Tensor]:
    """A random checkpoint in the official layout of `arch` (whole classifier), made once per
    (arch, seed); a new dict each call, so a test may add or remove entries."""
    return dict(_official_weights(arch, seed))


def backbone_with_official_weights(arch: str, seed: int = 0, dtype=torch.float32, **kwargs):
    """(backbone of `arch` in eval mode holding official_weights(arch, seed), those weights), in
    `dtype`; stochastic depth off."""
    from mmpvt.families import convert_to_mmpvt
    from mmpvt.models import build_backbone
    sd = {k: v.to(dtype) for k, v in official_weights(arch, seed).items()}
    model = build_backbone(arch, drop_path_rate=0.0, **kwargs).to(dtype)
    model.load_state_dict(convert_to_mmpvt(sd).state_dict, strict=True)
    return model.eval(), sd


@functools.lru_cache(maxsize=None)
def meta_backbone(arch: str):
    """The backbone of `arch` on the meta device (shapes only, built in milliseconds); shared:
    do not modify it."""
    from mmpvt.models import build_backbone
    with torch.device('meta'):
        return build_backbone(arch)


def shapes(state_dict) -> Dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_holds_official_weights(model, official) -> None:
    """A few tensors of `model` (mmpvt names) equal their official-layout source, names renamed by
    hand: patch embedding, a K/V projection and each family's stage-4 extra (v1: position table
    without its class-token row, or with it in a class-token backbone; v2: stage norm)."""
    sd = model.state_dict()
    assert torch.equal(sd['stages.0.patch_embed.proj.weight'], official['patch_embed1.proj.weight'])
    assert torch.equal(sd['stages.2.blocks.1.attn.kv.bias'], official['block3.1.attn.kv.bias'])
    if 'pos_embed4' in official:
        rows = slice(None) if getattr(model, 'with_cls_token', False) else slice(1, None)
        assert torch.equal(sd['stages.3.pos_embed'], official['pos_embed4'][:, rows])
    else:
        assert torch.equal(sd['stages.3.norm.weight'], official['norm4.weight'])


def assert_holds_official_classifier(sd, official) -> None:
    """A few tensors of a classifier state dict `sd` (mmpretrain's names: ``backbone.*``,
    ``head.fc.*``) equal their official-layout source, renamed by hand: the head, patch embedding,
    a K/V projection and each family's stage-4 extras (v1: class token, final norm and the whole
    position table, class-token row included; v2: stage norm)."""
    assert torch.equal(sd['head.fc.weight'], official['head.weight'])
    assert torch.equal(sd['head.fc.bias'], official['head.bias'])
    assert torch.equal(sd['backbone.stages.0.patch_embed.proj.weight'],
                       official['patch_embed1.proj.weight'])
    assert torch.equal(sd['backbone.stages.2.blocks.1.attn.kv.weight'],
                       official['block3.1.attn.kv.weight'])
    if 'cls_token' in official:
        assert torch.equal(sd['backbone.cls_token'], official['cls_token'])
        assert torch.equal(sd['backbone.norm.weight'], official['norm.weight'])
        assert torch.equal(sd['backbone.norm.bias'], official['norm.bias'])
        assert torch.equal(sd['backbone.stages.3.pos_embed'], official['pos_embed4'])
    else:
        assert torch.equal(sd['backbone.stages.3.norm.weight'], official['norm4.weight'])


def saved_checkpoint(folder, state_dict, name: str = 'model.pth') -> str:
    """Save `state_dict` as a training checkpoint (``{'state_dict': ...}``) in `folder`."""
    torch.save({'state_dict': state_dict}, folder / name)
    return str(folder / name)


def data_env(root):
    """The environment that points the demo configs at the generated data under `root`."""
    return {'MMPVT_DEMO_DATA': f'{root}/'}


def random_weights(config, path):
    """A checkpoint of `config`'s model with its random initial weights."""
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(os.path.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    registry = __import__(f'{cfg.default_scope}.registry', fromlist=['MODELS']).MODELS
    torch.save({'state_dict': registry.build(cfg.model).state_dict()}, path)
    return path


def mmdet_zoo_model(zoo_config: str):
    """mmdet's own model of its installed zoo config `zoo_config` (e.g.
    'pvt/retinanet_pvt-t_fpn_1x_coco.py'), randomly initialised (no ImageNet weights)."""
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope
    cfg = get_config(f'mmdet::{zoo_config}')
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    return build_model(cfg)


def place_in_hub_cache(cache, repo: str, filename: str, state_dict) -> str:
    """Put `state_dict` into the Hugging Face cache folder `cache` as the file `filename` of the
    model `repo` ('OWNER/NAME') at its main revision, laid out as huggingface_hub lays out what it
    downloads (refs/main names a commit, snapshots/<commit>/ holds the files); safetensors for a
    ``.safetensors`` name, else torch.save. Returns the file's path."""
    from safetensors.torch import save_file
    folder = cache / ('models--' + repo.replace('/', '--'))
    commit = '0123456789abcdef0123456789abcdef01234567'
    (folder / 'refs').mkdir(parents=True, exist_ok=True)
    (folder / 'refs' / 'main').write_text(commit)
    (folder / 'snapshots' / commit).mkdir(parents=True, exist_ok=True)
    path = folder / 'snapshots' / commit / filename
    if filename.endswith('.safetensors'):
        save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    else:
        torch.save(state_dict, path)
    return str(path)


def load_pretrained(path, arch: str, **extra):
    """A backbone of `arch` initialised through ``init_cfg=dict(type='Pretrained', ...)``."""
    from mmpvt.models import build_backbone
    model = build_backbone(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path), **extra))
    model.init_weights()
    return model.eval()


def set_layer_norm_eps(model, eps: float) -> None:
    """Every LayerNorm of `model` to `eps` (to compare with ports that use another eps)."""
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):
            m.eps = eps


class RunsCode:
    """A pickle payload: unpickling it creates the directory `marker`, the proof that loading a
    checkpoint ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker, )


def poison_hub_cache(torch_home, name: str = 'evil.pth'):
    """Put a checkpoint whose unpickling runs code into the torch hub cache under `torch_home`,
    as a download of ``https://example.invalid/<name>`` would leave it; returns the marker path
    that running it would create."""
    cache = torch_home / 'hub' / 'checkpoints'
    cache.mkdir(parents=True, exist_ok=True)
    marker = torch_home / 'code_ran'
    torch.save({
        'state_dict': {
            'w': torch.zeros(1)
        },
        'payload': RunsCode(str(marker))
    }, cache / name)
    return marker


def onnx_infer(*args) -> subprocess.CompletedProcess:
    """tools/deploy/onnx_infer.py ARGS in its own process (not checked)."""
    return run_command(['tools/deploy/onnx_infer.py', *map(str, args)], check=False)


def tiny_segmentation_graph(path, size: int, meta_text: Optional[str] = None) -> None:
    """A stand-in for an exported segmentor with a fixed (1, 3, size, size) input: seg_map is
    the argmax over the 3 input channels, so an image of size x size gives its own (H0, W0).
    Its mmpvt metadata is the export's for such a model, or `meta_text`."""
    import onnx  # the deploy extra's
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node('ArgMax', ['input'], ['seg_map'], axis=1, keepdims=0)], 'tiny', [
            helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, size, size]),
            helper.make_tensor_value_info('size_ref', TensorProto.UINT8, [1, 'h', 'w'])
        ], [helper.make_tensor_value_info('seg_map', TensorProto.INT64, [1, size, size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    meta = dict(task='seg', resize=dict(type='resize', scale=[size, size]), mean=[0, 0, 0],
                std=[1, 1, 1], bgr_to_rgb=False, pad_size_divisor=32, classes=['a', 'b', 'c'],
                palette=[[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    helper.set_model_props(model, {'mmpvt': meta_text or json.dumps(meta)})
    onnx.save(model, str(path))
