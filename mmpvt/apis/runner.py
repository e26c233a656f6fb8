"""What tools/train.py and tools/test.py do, as functions (one code path for mmdet, mmseg and
mmpretrain).

The command-line behaviour follows mmdet's, mmseg's and mmpretrain's own tools (same flags, same
work_dir default, same --resume/--amp/--auto-scale-lr/--tta/--out/--show-dir semantics); the
task (detection, segmentation or classification) is read off the config's ``default_scope``.
"""
import atexit
import contextlib
import gc
import glob
import json
import logging
import os
import os.path as osp
import re
import sys
from copy import deepcopy
from typing import NoReturn, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..datasets.reports import annotation_files, first_unparsable
from ..engine.metrics import atomic_dump_metric
from ..fileio import ATOMIC_BACKEND, check_writable, incomplete_checkpoint, work_dir_lock
from ..models.builder import SCOPES
from ..safe_load import CheckpointFileError, directory_problem, names_remote_checkpoint


def _check_option_types(cfg: Config, options: dict) -> None:
    """A ``--cfg-options`` value replacing a number or a boolean must be one: DictAction keeps
    what does not parse as a string (``max_epochs=abc``, ``persistent_workers=yes``), which would
    fail much later naming no key."""
    for key, value in options.items():
        node = cfg.to_dict()  # a Config is no dict
        for part in key.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool) and not isinstance(value, bool):
            raise ValueError(f'--cfg-options {key}={value}: expected True or False (the config '
                             f'has {node!r}), got {value!r}')
        is_number = isinstance(node, (int, float)) and not isinstance(node, bool)
        if is_number and isinstance(value, str):
            raise ValueError(f'--cfg-options {key}={value}: expected a number (the config has '
                             f'{node!r}), got {value!r}')


def load_config(path: str, cfg_options: Optional[dict] = None, launcher: str = 'none',
                work_dir: Optional[str] = None) -> Config:
    """Read a config, apply ``--cfg-options`` and choose the work_dir (CLI > config > default)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as e:  # mmengine parses the text itself: the file shows as '<unknown>'
        raise ValueError(f'{path}: syntax error at line {e.lineno}: {e.msg} (in this config or '
                         'a _base_ it inherits)') from None
    cfg.launcher = launcher
    if cfg_options:
        _check_option_types(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in SCOPES:  # said before any Runner is built
        raise ValueError(f'{path}: default_scope must be one of {SCOPES} (inherit an mmdet::, '
                         f'mmseg:: or mmpretrain:: base config), got {scope!r}')
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint of `work_dir` a resumed run should start from, or None.

    Candidates, newest first: the file mmengine's ``last_checkpoint`` pointer names, then the
    ``iter_*.pth`` / ``epoch_*.pth`` files by number. A candidate that is not a complete archive
    is skipped with a log line naming it and why (checkpoints our atomic backend writes are
    always complete, but a copied or externally written work dir may hold a truncated one).
    """
    candidates = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if path and osp.isfile(path):
            candidates.append(path)
    numbered = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        m = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', osp.basename(path))
        if m:
            numbered.append((int(m.group(2)), path))
    candidates += [p for _, p in sorted(numbered, reverse=True) if p not in candidates]
    for path in candidates:
        why = incomplete_checkpoint(path)
        if why is None:
            return path
        print_log(f'--resume: skipping {path}: {why}', logger='current', level=logging.WARNING)
    return None


def _fit_checkpoints(cfg: Config, strict: bool) -> None:
    """Fit what the Runner loads to the model first (mmpvt.CheckpointFitHook): strictly for
    testing and resuming, the fine-tuning way (one log line) for ``load_from``."""
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'mmpvt.CheckpointFitHook']
    cfg.custom_hooks = hooks + [ConfigDict(type='mmpvt.CheckpointFitHook', strict=strict)]


def _report_data(cfg: Config, strict: bool) -> None:
    """Detection runs say what their COCO-style datasets left out (mmpvt.DatasetReportHook);
    `strict` (``--strict-data``): any such loss stops the run."""
    if cfg.get('default_scope') != 'mmdet':
        return
    hooks = [h for h in cfg.get('custom_hooks', []) if h.get('type') != 'mmpvt.DatasetReportHook']
    cfg.custom_hooks = hooks + [ConfigDict(type='mmpvt.DatasetReportHook', strict=strict)]


def configure_train(cfg: Config, resume: Optional[str] = None, amp: bool = False,
                    auto_scale_lr: bool = False, strict_data: bool = False) -> Config:
    """Apply train.py's flags to `cfg` (in place) and return it.

    resume: None (fresh run), 'auto' (latest complete checkpoint in work_dir) or a path.
    strict_data: what a dataset leaves out of its annotations stops the run (else: log lines).
    """
    if amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp needs an OptimWrapper/AmpOptimWrapper, the config uses '
                             f'{optim_wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError('--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=...)` '
                             'in the config')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            print_log(f'--resume: no checkpoint in {cfg.work_dir} yet, starting from scratch',
                      logger='current')
            cfg.resume = False
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume: checkpoint not found: {resume}')
        why = incomplete_checkpoint(resume)
        if why is not None:
            raise ValueError(f'--resume: cannot resume from {resume}: {why}; give another '
                             'checkpoint, or --resume alone for the newest complete one')
        cfg.resume = True
        cfg.load_from = resume
    _fit_checkpoints(cfg, strict=bool(cfg.get('resume')))
    _report_data(cfg, strict_data)
    if resume is not None:  # every rank must resume from the same file (rank 0's choice)
        hooks = [
            h for h in cfg.get('custom_hooks', []) if h.get('type') != 'mmpvt.ResumeAgreementHook'
        ]
        cfg.custom_hooks = hooks + [ConfigDict(type='mmpvt.ResumeAgreementHook')]
    checkpoint_hook = cfg.get('default_hooks', {}).get('checkpoint')
    if checkpoint_hook is not None and checkpoint_hook.get('backend_args') is None \
            and checkpoint_hook.get('file_client_args') is None \
            and '://' not in str(checkpoint_hook.get('out_dir', '')):
        checkpoint_hook.backend_args = dict(backend=ATOMIC_BACKEND)
    return cfg


def _tta_for_detection(cfg: Config) -> None:
    """Horizontal-flip TTA for an mmdet config that brings no tta_model/tta_pipeline of its own."""
    cfg.setdefault(
        'tta_model',
        ConfigDict(type='DetTTAModel',
                   tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))
    if 'tta_pipeline' not in cfg:
        dataset = cfg.test_dataloader.dataset
        while 'dataset' in dataset:
            dataset = dataset.dataset
        pipeline = deepcopy(dataset.pipeline)
        pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[dict(type='RandomFlip', prob=1.0),
                         dict(type='RandomFlip', prob=0.0)],
                        [
                            dict(
                                type='PackDetInputs',
                                meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                           'scale_factor', 'flip', 'flip_direction'))
                        ]])
        cfg.tta_pipeline = pipeline


def configure_test(cfg: Config, checkpoint: str, out: Optional[str] = None,
                   show_dir: Optional[str] = None, tta: bool = False,
                   strict_data: bool = False) -> Config:
    """Apply test.py's flags to `cfg` (in place) and return it (`strict_data`: as
    :func:`configure_train`'s)."""
    if osp.isdir(checkpoint):  # (a Hugging Face model folder: which file inside)
        raise CheckpointFileError(directory_problem(checkpoint))
    if not (osp.isfile(checkpoint) or names_remote_checkpoint(checkpoint)):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    cfg.load_from = checkpoint
    _fit_checkpoints(cfg, strict=True)
    _report_data(cfg, strict_data)
    detection = cfg.default_scope == 'mmdet'
    if out is not None:  # said now, not after the whole test split has run
        if cfg.default_scope == 'mmseg':
            check_writable(out, '--out', directory=True)
        elif not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl/.pickle file for '
                             f'{"detection" if detection else "classification"}, got {out}')
        else:
            check_writable(out, '--out')
    if show_dir:
        check_writable(show_dir, '--show-dir', directory=True)
        hook = cfg.default_hooks.visualization
        if cfg.default_scope == 'mmpretrain':  # mmpretrain's hook: enable, out_dir, interval
            hook.update(enable=True, out_dir=show_dir, interval=1)
        elif detection:
            hook.draw = True
            hook.test_out_dir = show_dir
        else:
            hook.draw = True
            cfg.visualizer.save_dir = show_dir
            # the visualizer is a per-name singleton: under the base's fixed name, a second
            # Runner in the same process (train, then test) would reuse the first one's save_dir
            cfg.visualizer.pop('name', None)
            hook.interval = 1  # mmseg's hook would otherwise draw only every 50th batch
        if cfg.launcher != 'none':
            print_log(
                "--show-dir: mmdet's, mmseg's and mmpretrain's visualizers draw in the "
                'main process only: a test in N processes draws the 1/N of the images '
                'rank 0 tests', logger='current')
    if tta:
        if detection:
            _tta_for_detection(cfg)
        elif 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs `tta_model` and `tta_pipeline` in the config')
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    if out is not None and cfg.default_scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = out  # mmseg: a directory of predicted masks
        cfg.test_evaluator['keep_results'] = True
    return cfg


def cpu_backend(cfg: Config) -> str:
    """The process-group backend for a run without CUDA: the config's, except that NCCL (the
    default of mmdet's, mmseg's and mmpretrain's runtimes, GPUs only) becomes gloo, with one log
    line. Configs name no backend of their own for the CPU, so the same config takes NCCL on a
    GPU node."""
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'gloo')
    if backend == 'nccl':
        print_log(
            'no CUDA on this machine: the process group uses gloo instead of the '
            "config's nccl", logger='current')
        return 'gloo'
    return backend


# the names a config gives mmengine's DDP wrapper (mmengine's Runner defaults to it)
MMENGINE_DDP = ('MMDistributedDataParallel', 'mmengine.MMDistributedDataParallel')


def _setup_cpu_distributed(cfg: Config) -> None:
    """Make ``--launcher pytorch`` work without CUDA (e.g. gloo on CPU).

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally, which fails
    on a CPU-only torch, and its default DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which DDP
    rejects for CPU modules. So on a machine without CUDA we create the process group ourselves
    (the Runner then skips its init_dist) and wrap with
    :class:`mmpvt.engine.CPUDistributedDataParallel` (mmengine's wrapper as on GPUs, without
    device ids, SyncBN as BatchNorm).
    """
    if cfg.launcher != 'pytorch' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group(backend=cpu_backend(cfg))
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = ConfigDict(
            type='mmpvt.CPUDistributedDataParallel',
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper.get('type', 'MMDistributedDataParallel') in MMENGINE_DDP:
        # the config's own settings of mmengine's wrapper (e.g. find_unused_parameters=True)
        cfg.model_wrapper_cfg = ConfigDict(wrapper, type='mmpvt.CPUDistributedDataParallel')
        print_log(
            f"no CUDA: the config's {wrapper.get('type', 'MMDistributedDataParallel')} "
            'runs as mmpvt.CPUDistributedDataParallel (no device ids, SyncBN as BatchNorm)',
            logger='current')
    else:  # another wrapper (e.g. MMFullyShardedDataParallel): as the config says, on CPU
        cfg.model_wrapper_cfg.setdefault('device_ids', None)


def build_runner(cfg: Config) -> Runner:
    from mmengine.registry import RUNNERS
    _setup_cpu_distributed(cfg)
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)


# set once this process has destroyed its process group: see exit_process
_DISTRIBUTED = {'ended': False}


def end_distributed() -> None:
    """Destroy the process group, if any, before the process exits (torch warns otherwise).
    The Runner (the DDP model, which holds the group) is collected first, so that the group and
    gloo's threads are torn down here, in order, and not during interpreter exit."""
    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        _DISTRIBUTED['ended'] = True


def exit_process(code: int) -> NoReturn:
    """End a tool's process with `code` (``sys.exit``), except after a distributed run: then,
    once the atexit functions have run (log files flushed and closed), the process ends at once
    (``os._exit``). Interpreter and C++ teardown after a gloo run aborted it now and then
    ("terminate called without an active exception", seen about once in ten two-process
    launches of torch 2.14 here) after all its work was done, which torchrun reports as a
    failed rank."""
    if not _DISTRIBUTED['ended']:
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)  # as sys.exit


# the global rank as each launcher sets it: torchrun, slurm, Open MPI, MPICH / Intel MPI
RANK_VARIABLES = ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK')


def launch_rank() -> int:
    """This process's global rank as its launcher set it, before any process group exists; 0
    for a single process."""
    return int(next((os.environ[v] for v in RANK_VARIABLES if v in os.environ), 0))


# mmcv's LoadImageFromFile on an image it cannot decode (also inside a dataloader worker's
# re-raised message, after the worker's traceback)
UNREADABLE_IMAGE = re.compile(r'failed to load image: (.+)$', re.M)
# what mmengine's BaseDataset says when it serializes an empty data list (np.concatenate([]))
EMPTY_DATASET = 'need at least one array to concatenate'


@contextlib.contextmanager
def data_errors_named(cfg: Config):
    """Bad data files as one line naming them: an annotation file that does not parse (json's
    own error gives a position only; the files are read again only then, a COCO train file is
    hundreds of MB), a dataset left empty by its filters (numpy's error when mmengine
    serializes it) and an image that cannot be decoded (mmcv's assertion)."""
    try:
        yield
    except json.JSONDecodeError as e:
        problem = first_unparsable(annotation_files(cfg))
        if problem:
            raise ValueError(problem) from e
        raise
    except ValueError as e:
        if str(e) != EMPTY_DATASET:
            raise
        raise ValueError('a dataset has no sample left after its filters (filter_cfg, classes, '
                         'indices); check its annotation files: ' +
                         ', '.join(annotation_files(cfg))) from e
    except AssertionError as e:
        unreadable = UNREADABLE_IMAGE.search(str(e))
        if unreadable is None:
            raise
        raise ValueError(f'image {unreadable.group(1).strip()} cannot be decoded (truncated, '
                         'or not an image); replace it, or remove it from the annotations') from e


def run_train(cfg: Config) -> None:
    """Train `cfg` with mmengine's Runner. The work dir is checked first, and rank 0 owns it for
    the run (:func:`mmpvt.fileio.work_dir_lock`): a second training into it stops with one
    line."""
    check_writable(cfg.work_dir, '--work-dir', directory=True)
    owner = work_dir_lock(cfg.work_dir) if launch_rank() == 0 else contextlib.nullcontext()
    try:
        with owner, data_errors_named(cfg):
            build_runner(cfg).train()  # (the Runner is garbage once train() returns)
    finally:
        end_distributed()


def run_test(cfg: Config, out: Optional[str] = None) -> dict:
    """Evaluate ``cfg.load_from`` on the test split; returns the metrics dict."""
    with data_errors_named(cfg):
        return _run_test(cfg, out)


def _run_test(cfg: Config, out: Optional[str]) -> dict:
    runner = build_runner(cfg)
    if out is not None and cfg.default_scope in ('mmdet', 'mmpretrain'):
        if cfg.default_scope == 'mmdet':
            from mmdet.evaluation import DumpDetResults as Dump
        else:  # each image's scores, label and ground truth, as mmpretrain's test.py writes
            from mmengine.evaluator import DumpResults as Dump
        runner.test_evaluator.metrics.append(atomic_dump_metric(Dump)(out_file_path=out))
    try:
        return runner.test()
    finally:
        del runner
        end_distributed()
