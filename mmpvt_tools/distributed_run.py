"""Train, checkpoint, resume, test and export one config through the launchers a cluster uses.

    run = DistributedRun('configs/demo/retinanet_pvt_t.py', work_dir, nproc=2,
                         expected_samples=4)
    for step in run.steps():            # train, resume, test, export
        print(step.line())

Each step is what a user types: ``tools/dist_train.sh CONFIG N`` (one epoch or iteration),
``tools/dist_train.sh CONFIG N --resume`` (one more), ``tools/dist_test.sh CONFIG CKPT N`` and
``tools/deploy/export_onnx.py CONFIG CKPT``, each a fresh torchrun of ``nproc`` processes (NCCL on
GPUs; gloo without CUDA, where SyncBN runs as BatchNorm). The config is the user's, shortened
(:func:`short_config`): validation after every launch and the test both dump what rank 0 gathered
from all ranks, so a step passes only if its processes agree on every sample of the split, each
exactly once, and a resume passes only if it continued from the first launch's checkpoint.

``tools/check_env.py --device cuda`` runs it on one GPU for the RetinaNet and Semantic FPN demos;
the suite runs it in two gloo processes for a v1 and a v2 detector, a segmentor and a classifier.
"""
import os
import os.path as osp
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple
from unittest import mock

from mmengine.config import Config

from mmpvt.safe_load import load_from_local

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
STEPS = ('train', 'resume', 'test', 'export')
VAL_DUMP = 'val_results.pkl'
TEST_DUMP = 'test_results.pkl'


@dataclass
class StepResult:
    """One step: ``ok`` with what it showed (``detail``), or not, with the reason."""
    name: str
    ok: bool
    seconds: float
    detail: str
    command: List[str] = field(default_factory=list)

    def line(self) -> str:
        return f'{"PASS" if self.ok else "FAIL"} {self.name}: {self.detail} ({self.seconds:.0f} s)'


def set_score_thresholds(test_cfg, value: float = 0.0) -> None:
    """Every ``score_thr`` of a detector's test_cfg (RetinaNet's, an R-CNN's ``rcnn``) set to
    `value`: a model trained for two steps scores below any threshold a config ships with, and
    the run checks that every image's predictions travel, not how good they are."""
    if isinstance(test_cfg, dict):
        for key, value_ in test_cfg.items():
            if key == 'score_thr':
                test_cfg[key] = value
            else:
                set_score_thresholds(value_, value)


def short_config(config: str, work_dir: str, cfg_options: Optional[dict] = None) -> str:
    """`config` as a run of one epoch (or one iteration) that validates and checkpoints at its
    end, with mmengine's ``DumpResults`` beside the val and test metrics; written to
    ``work_dir/config/<name>`` (the Runner copies the config it ran to ``work_dir/<name>``,
    resume settings included), whose path it returns. `cfg_options` are merged last (e.g. the
    dataloaders' ``num_workers``)."""
    cfg = Config.fromfile(config)
    unit = 'max_epochs' if 'max_epochs' in cfg.train_cfg else 'max_iters'
    cfg.train_cfg[unit] = 1
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    set_score_thresholds(cfg.model.get('test_cfg'))
    for split, dump in (('val', VAL_DUMP), ('test', TEST_DUMP)):
        metrics = cfg[f'{split}_evaluator']
        metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        cfg[f'{split}_evaluator'] = metrics + [
            dict(type='DumpResults', out_file_path=osp.join(work_dir, dump))
        ]
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    os.makedirs(osp.join(work_dir, 'config'), exist_ok=True)
    path = osp.join(work_dir, 'config', osp.basename(config))
    cfg.dump(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def gathered_samples(path: str, expected: int) -> str:
    """'' if the dump at `path` holds `expected` samples, each once; else what is wrong."""
    if not osp.isfile(path):
        return f'rank 0 wrote no gathered results ({path})'
    with open(path, 'rb') as f:
        results = pickle.load(f)  # our own file, written by mmengine's DumpResults
    names = [r.get('img_path') for r in results]
    if len(results) != expected or len(set(names)) != expected:
        return (f'the gathered results hold {len(results)} samples ({len(set(names))} distinct), '
                f'the split has {expected}')
    return ''


def checkpoint_iter(path: str) -> int:
    """The iteration a Runner checkpoint was saved at (read as every checkpoint is read with
    mmpvt: without running code)."""
    return load_from_local(path, map_location='cpu')['meta']['iter']


class DistributedRun:
    """The four steps of one config; see the module's docstring.

    Args:
        config: the config a user trains (its data found as it says, e.g. MMPVT_DEMO_DATA).
        work_dir: everything is written here.
        nproc: processes (GPUs) per launch. Default: 1.
        expected_samples: samples in the val/test split (each must come back exactly once).
        cfg_options: merged into the config (e.g. dataloader workers). Default: none.
        train_args: more arguments of tools/train.py (e.g. ``['--amp']``). Default: none.
        export_shape: (H, W) of the ONNX graph. Default: the export tool's.
        env: more environment variables for the launches (e.g. MMPVT_DEMO_DATA).
        timeout: seconds per step. Default: 600.
    """

    def __init__(self, config: str, work_dir: str, nproc: int = 1, expected_samples: int = 0,
                 cfg_options: Optional[dict] = None, train_args: Sequence[str] = (),
                 export_shape: Optional[Sequence[int]] = None, env: Optional[dict] = None,
                 timeout: int = 600) -> None:
        self.config, self.work_dir, self.nproc = config, osp.abspath(work_dir), nproc
        self.expected_samples = expected_samples
        self.cfg_options, self.train_args = cfg_options, list(train_args)
        self.export_shape, self.timeout = export_shape, timeout
        self.env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1', **(env or {}))
        self.outputs = {}  # step name -> its stdout and stderr
        self.short_config = None
        self.first_checkpoint = self.last_checkpoint = None
        self.first_iter = self.last_iter = None  # their iterations

    def steps(self, names: Sequence[str] = STEPS) -> Iterator[StepResult]:
        """Runs the named steps in order, yielding each result; stops after a failed one (the
        later steps need its files)."""
        with mock.patch.dict(os.environ, self.env):  # ({{$VAR}} in configs: e.g. the data)
            self.short_config = short_config(self.config, self.work_dir, self.cfg_options)
        for name in names:
            start = time.perf_counter()
            command = getattr(self, f'_{name}_command')()
            for stale in (VAL_DUMP, TEST_DUMP):  # what this step leaves must be its own
                if osp.isfile(osp.join(self.work_dir, stale)):
                    os.remove(osp.join(self.work_dir, stale))
            returncode, self.outputs[name] = run_in_own_group(
                command, self.timeout, env=dict(self.env, PORT=str(free_port())))
            if returncode is None:
                problem = f'{" ".join(command[:3])} ... did not end within {self.timeout} s'
            elif returncode != 0:
                problem = f'{" ".join(command[:3])} ... exited with {returncode}: ' \
                          f'{last_error(self.outputs[name])}'
            else:
                problem = getattr(self, f'_{name}_problem')()
            detail = problem or getattr(self, f'_{name}_summary')()
            yield StepResult(name, not problem, time.perf_counter() - start, detail, command)
            if problem:
                return

    # --- the commands
    def _launcher(self, script: str, *args) -> List[str]:
        return ['bash', osp.join(REPO, 'tools', script), *args]

    def _train_command(self) -> List[str]:
        return self._launcher('dist_train.sh', self.short_config, str(self.nproc), '--work-dir',
                              self.work_dir, *self.train_args)

    def _resume_command(self) -> List[str]:
        unit = 'max_epochs' if 'epoch_' in osp.basename(self.first_checkpoint) else 'max_iters'
        return self._launcher('dist_train.sh', self.short_config, str(self.nproc), '--work-dir',
                              self.work_dir, '--resume', *self.train_args, '--cfg-options',
                              f'train_cfg.{unit}=2')

    def _test_command(self) -> List[str]:
        return self._launcher('dist_test.sh', self.short_config, self.last_checkpoint,
                              str(self.nproc), '--work-dir', osp.join(self.work_dir, 'test'))

    def _export_command(self) -> List[str]:
        shape = ['--shape', *map(str, self.export_shape)] if self.export_shape else []
        return [
            sys.executable,
            osp.join(REPO, 'tools', 'deploy', 'export_onnx.py'), self.short_config,
            self.last_checkpoint, self.onnx_path, *shape
        ]

    @property
    def onnx_path(self) -> str:
        return osp.join(self.work_dir, 'model.onnx')

    # --- what each step must have left
    def _newest_checkpoint(self) -> Optional[str]:
        marker = osp.join(self.work_dir, 'last_checkpoint')
        if not osp.isfile(marker):
            return None
        with open(marker) as f:
            return f.read().strip()

    def _validated(self, step: str) -> str:
        dump = osp.join(self.work_dir, VAL_DUMP)
        problem = gathered_samples(dump, self.expected_samples)
        if not problem:
            os.replace(dump, osp.join(self.work_dir, f'{step}_{VAL_DUMP}'))
        return problem and f'validation: {problem}'

    def _train_problem(self) -> str:
        self.first_checkpoint = self._newest_checkpoint()
        if self.first_checkpoint is None:
            return f'no checkpoint in {self.work_dir}'
        self.first_iter = checkpoint_iter(self.first_checkpoint)
        # what a test or export after it reads, unless a resume step writes a newer one
        self.last_checkpoint, self.last_iter = self.first_checkpoint, self.first_iter
        return self._validated('train')

    def _train_summary(self) -> str:
        return (f'{self.nproc} process(es) wrote {osp.basename(self.first_checkpoint)} '
                f'(iteration {self.first_iter}) and validated '
                f'{self.expected_samples} samples gathered from every rank')

    def _resume_problem(self) -> str:
        self.last_checkpoint = self._newest_checkpoint()
        loaded = re.search(r'Load checkpoint from (\S+)', self.outputs['resume'])
        resumed = re.search(r'resumed epoch: \d+, iter: (\d+)', self.outputs['resume'])
        if not loaded or osp.abspath(loaded.group(1)) != self.first_checkpoint or not resumed:
            return f'the second launch did not resume from {self.first_checkpoint}'
        if int(resumed.group(1)) != self.first_iter:
            return (f'resumed at iteration {resumed.group(1)}, the checkpoint is at '
                    f'{self.first_iter}')
        if self.last_checkpoint == self.first_checkpoint:
            return 'the resumed launch wrote no checkpoint'
        self.last_iter = checkpoint_iter(self.last_checkpoint)
        return self._validated('resume')

    def _resume_summary(self) -> str:
        return (f'continued from iteration {self.first_iter} to {self.last_iter} '
                f'({osp.basename(self.last_checkpoint)}) and validated again')

    def _test_problem(self) -> str:
        problem = gathered_samples(osp.join(self.work_dir, TEST_DUMP), self.expected_samples)
        return problem and f'test: {problem}'

    def _test_summary(self) -> str:
        return (f'tested {osp.basename(self.last_checkpoint)}: {self.expected_samples} samples '
                'gathered from every rank')

    def _export_problem(self) -> str:
        if not osp.isfile(self.onnx_path) or osp.getsize(self.onnx_path) == 0:
            return f'no ONNX file at {self.onnx_path}'
        return ''

    def _export_summary(self) -> str:
        return (f'exported {osp.basename(self.last_checkpoint)} to {self.onnx_path} '
                f'({osp.getsize(self.onnx_path) / 2**20:.1f} MiB)')


def run_in_own_group(command: List[str], timeout: float, env: dict) -> Tuple[Optional[int], str]:
    """(exit status, or None after `timeout` seconds; stdout + stderr) of `command` run from the
    repository root in a process group of its own, which is killed whole on timeout: the
    launchers ``exec`` torchrun, whose workers would otherwise outlive it (holding the GPU and
    the work dir)."""
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return None, output


def last_error(output: str) -> str:
    """The line of `output` that says what went wrong in a rank (a tool's one-line error, an
    exception, an abort), not torchrun's summary; else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [
        line for line in lines
        if re.search(r'Error\b|error:|^\S+: |terminate called|Signal \d+', line)
        and not re.search(r'error_file|ChildFailedError|elastic', line)
    ]
    return (errors or lines or ['(no output)'])[-1][:300]
