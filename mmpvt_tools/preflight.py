"""The preflight of ``tools/check_env.py --device cuda|cpu``: what a user runs on a GPU node before
a long job, one PASS / FAIL / SKIP line per check and a JSON report.

    for check in Preflight('cuda', work_dir='work_dirs/check_env').run():
        print(check.line())

The checks, in order (``CHECKS``; ``--skip NAME`` leaves one out):

* ``versions``: torch, torchvision, mmengine, mmcv (and mmdet / mmseg / mmpretrain where
  installed) within the ranges mmpvt declares.
* ``mmcv.ops.nms`` / ``mmcv.ops.RoIAlign`` / ``mmcv.ops.sigmoid_focal_loss``: mmcv's compiled ops on
  the device against known answers (the focal loss has no CPU kernel: mmdet uses its PyTorch form
  there, so on the CPU it is skipped).
* ``fused-ops``: every layer of mmpvt.ops (the fused feed-forward, the depth-wise convolution)
  equals its plain PyTorch form in float32: features and all gradients of PVT-T, PVTv2-B0 and
  PVTv2-B2-Li (TF32 off).
* ``autocast-fp16`` / ``autocast-bf16``: features finite and within 5e-2 (relative L2) of
  float32, gradients' cosine to float32's above 0.99 (fp16 keeps 11 significand bits, bf16 8).
* ``channels-last``: a channels_last model and input give the contiguous run's features and
  gradients in float32 (1e-4) and, under each autocast dtype the device runs, finite features
  within 5e-2 of float32.
* ``sdpa``: every attention layer of PVT-S and PVTv2-B2 runs one of SDPA's fused kernels (flash,
  memory-efficient or cuDNN; on the CPU its flash kernel), counted per aten call under autocast.
* ``amp-train-step``: a whole-backbone training step of PVT-S and PVTv2-B2 at ``size`` (800x1344)
  under AMP (fp16 with a GradScaler on CUDA, which may skip overflowing steps as in any AMP run;
  bf16 on the CPU): loss and every gradient finite; its peak memory.
* ``with-cp``: activation checkpointing gives the gradients of the plain run (1e-5).
* ``torch.compile``: dynamo captures each backbone's forward as one graph, no break
  (``torch._dynamo.explain``; the backward graph and Inductor's code generation are not run).
* ``distributed-run``: ``tools/dist_train.sh`` / ``dist_test.sh`` / export of the RetinaNet and
  Semantic FPN demos on generated data, ``nproc`` processes: train, checkpoint, resume, test,
  export (:mod:`mmpvt_tools.distributed_run`).
"""
import os
import os.path as osp
import platform
import re
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, requires, version
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from packaging.requirements import Requirement
from torch.utils._python_dispatch import TorchDispatchMode

from mmpvt.families import build_encoder
from mmpvt.ops import use_fused_ops
from mmpvt.torch_compat import autocast_supports
from .demo_data import generate
from .distributed_run import REPO, DistributedRun
from .measure import cpu_name, peak_bytes, reset_peak, save_report

# float32 against float32 in another order of operations
FP32_TOL = 1e-4
# low precision (features: relative L2 error; gradients: cosine to float32's)
LOW_PRECISION_TOL = 5e-2
GRADIENT_COSINE = 0.99
# with_cp recomputes the same operations (CUDA may pick other convolution algorithms)
RECOMPUTE_TOL = 1e-5
# fp16 steps the AMP check allows GradScaler to skip for overflow before one goes through
AMP_STEPS = 4
# the small variants of each family (and the linear-SRA one) for the equality checks
SMALL_ARCHS = ('tiny', 'b0', 'b2_li')
# the backbones of the paper's headline detectors for the speed-path checks
HEADLINE_ARCHS = ('small', 'b2')
DEMOS = tuple(
    osp.join(REPO, 'configs', 'demo', name) for name in ('retinanet_pvt_t.py', 'sem_fpn_pvt_t.py'))
OPTIONAL_PACKAGES = ('mmdet', 'mmsegmentation', 'mmpretrain')
MMCV_CHECKS = ('mmcv.ops.nms', 'mmcv.ops.RoIAlign', 'mmcv.ops.sigmoid_focal_loss')
REBUILD = ('rebuild mmcv with CUDA ops: delete its cached wheel and run make install on this GPU '
           'node (or install a prebuilt CUDA wheel: MMPVT_MMCV_FIND_LINKS, docs/install.md)')


@dataclass
class CheckResult:
    name: str
    status: str  # PASS, FAIL or SKIP
    detail: str
    seconds: float = 0.0
    data: dict = field(default_factory=dict)

    def line(self) -> str:
        return f'{self.status} {self.name}: {self.detail}'


class Skip(Exception):
    """A check that means nothing here; its message says why."""


class Failed(Exception):
    """A check that ran and found a problem; its message says what."""


CHECKS: List[Tuple[str, Callable]] = []


def check(name: str) -> Callable:

    def register(function: Callable) -> Callable:
        CHECKS.append((name, function))
        return function

    return register


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (float64)."""
    a, b = a.double(), b.double()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@contextmanager
def exact_float32() -> Iterator[None]:
    """TF32 off for matmuls and convolutions (on by default for cuDNN convolutions)."""
    matmul, conv = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, conv


class Preflight:
    """Runs :data:`CHECKS` on `device`.

    Args:
        device: 'cuda' or 'cpu'.
        work_dir: where the distributed runs and the report go.
        size: (H, W) of the training-step and SDPA checks. Default: (800, 1344).
        nproc: processes (GPUs) of the distributed runs. Default: 1.
        skip: names of checks to leave out.
    """

    def __init__(self, device: str, work_dir: str, size: Sequence[int] = (800, 1344),
                 nproc: int = 1, skip: Sequence[str] = ()) -> None:
        self.device = torch.device(device)
        self.work_dir, self.size, self.nproc = work_dir, tuple(size), nproc
        self.skip = set(skip)
        unknown = self.skip - {name for name, _ in CHECKS}
        if unknown:
            raise ValueError(f'--skip: no check named {sorted(unknown)}; the checks are '
                             f'{[name for name, _ in CHECKS]}')

    def backbone(self, arch: str, **kwargs) -> torch.nn.Module:
        """`arch`'s encoder on the device, the same weights each time, no stochastic depth (two
        runs compared must compute the same function)."""
        torch.manual_seed(0)
        return build_encoder(arch, **{'drop_path_rate': 0.0, **kwargs}).to(self.device)

    def image(self, batch: int = 1, size: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Random (batch, 3, H, W) input: `size`, else 64x64 (the equality checks: the last
        stage sees 2x2 tokens, the first stage's keys after spatial reduction too)."""
        generator = torch.Generator().manual_seed(0)
        return torch.randn(batch, 3, *(size or (64, 64)), generator=generator).to(self.device)

    def run(self) -> Iterator[CheckResult]:
        for name, function in CHECKS:
            if name in self.skip:
                yield CheckResult(name, 'SKIP', 'left out (--skip)')
                continue
            start = time.perf_counter()
            try:
                detail, data = function(self)
                status = 'PASS'
            except Skip as e:
                status, detail, data = 'SKIP', str(e), {}
            except Failed as e:
                status, detail, data = 'FAIL', str(e), {}
            except Exception as e:  # noqa: BLE001  (a check that crashes fails; the rest run)
                where = traceback.extract_tb(e.__traceback__)[-1]
                status, data = 'FAIL', {}
                detail = (f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""} '
                          f'({osp.basename(where.filename)}:{where.lineno})')
            yield CheckResult(name, status, detail, time.perf_counter() - start, data)

    def environment(self) -> dict:
        info = dict(
            device=str(self.device), torch=torch.__version__, python=platform.python_version(),
            cpu=cpu_name())
        if self.device.type == 'cuda':
            info.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda,
                        capability='sm_%d%d' % torch.cuda.get_device_capability())
        return info


def write_report(path: str, environment: dict, results: Sequence[CheckResult]) -> None:
    """The JSON report of the checks so far, written atomically."""
    save_report(
        dict(environment=environment, passed=all(r.status != 'FAIL' for r in results),
             checks=[asdict(r) for r in results]), path)


# --- the checks, in the order they run -----------------------------------------------------------
@check('versions')
def _versions(p: Preflight):
    found, problems = {}, []
    for line in requires('mmpvt') or []:
        req = Requirement(line)
        in_an_extra = req.marker is not None and not req.marker.evaluate({'extra': ''})
        if in_an_extra and req.name not in OPTIONAL_PACKAGES:
            continue  # deploy and test extras: not the stack a job runs on
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            if not in_an_extra:
                problems.append(f'{req.name} is not installed ({req})')
            continue
        found[req.name] = installed
        if not req.specifier.contains(installed.split('+')[0], prereleases=True):
            problems.append(f'{req.name} {installed} is outside {req.specifier}')
    if problems:
        raise Failed('; '.join(problems))
    return ', '.join(f'{k} {v}' for k, v in sorted(found.items())), dict(versions=found)


def _mmcv_op(p: Preflight, name: str, run: Callable, expected) -> tuple:
    where = 'CUDA' if p.device.type == 'cuda' else 'the CPU'
    hint = REBUILD if p.device.type == 'cuda' else 'reinstall mmcv (make install)'
    try:
        got = run()
    except RuntimeError as e:  # 'implementation for device cuda:0 not found'
        raise Failed(f'mmcv.ops.{name} does not run on {where} ({str(e).splitlines()[0]}); '
                     f'{hint}')
    if got != expected:
        raise Failed(f'mmcv.ops.{name} gives a wrong answer on {where} ({got}, not {expected}); '
                     f'{hint}')
    return f'gives {expected} on {where}', {}


# mmcv.ops is imported by each check: an mmcv whose compiled ops do not load fails these checks,
# and the others still run
@check('mmcv.ops.nms')
def _nms(p: Preflight):
    from mmcv.ops import nms

    def keep():  # the second box overlaps the first (IoU 0.81), the third none
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]],
                             device=p.device)
        return nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=p.device), 0.5)[1].tolist()

    return _mmcv_op(p, 'nms', keep, [0, 2])


@check('mmcv.ops.RoIAlign')
def _roi_align(p: Preflight):
    from mmcv.ops import RoIAlign

    def bins():  # each output bin averages one sample at its centre: 5, 7, 13, 15
        feature = torch.arange(16., device=p.device).reshape(1, 1, 4, 4)
        roi = torch.tensor([[0., 0., 0., 4., 4.]], device=p.device)
        return RoIAlign(2, 1.0, 1, aligned=False)(feature, roi).flatten().tolist()

    return _mmcv_op(p, 'RoIAlign', bins, [5., 7., 13., 15.])


@check('mmcv.ops.sigmoid_focal_loss')
def _focal_loss(p: Preflight):
    if p.device.type != 'cuda':
        raise Skip("mmcv has no CPU kernel of it; mmdet's FocalLoss uses its PyTorch form on "
                   'the CPU')
    from mmcv.ops import sigmoid_focal_loss

    def loss():  # logit 0, target class 0 of 1: alpha * 0.5^2 * log(2) with alpha = 0.25
        value = sigmoid_focal_loss(
            torch.zeros(1, 1, device=p.device), torch.zeros(1, dtype=torch.long, device=p.device),
            2.0, 0.25, None, 'sum').item()
        return round(value, 6)

    return _mmcv_op(p, 'sigmoid_focal_loss', loss, round(0.25 * 0.25 * 0.6931472, 6))


def features_and_gradients(model: torch.nn.Module,
                           x: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """The features of `x` and the gradients of `x` and of all weights for the loss
    sum(mean(f^2)), in float32."""
    model.zero_grad()
    x = x.detach().requires_grad_()
    features = model(x)
    sum(f.float().square().mean() for f in features).backward()
    return ([f.detach().float() for f in features],
            [x.grad] + [q.grad.float() for q in model.parameters() if q.grad is not None])


def worst_error(a, b) -> float:
    """The largest relative_error over the features and gradients of two runs."""
    return max(relative_error(u, v) for u, v in zip(a[0] + a[1], b[0] + b[1]))


@check('fused-ops')
def _fused_ops(p: Preflight):
    worst = {}
    with exact_float32():
        for arch in SMALL_ARCHS:
            model = p.backbone(arch).train()
            x = p.image()
            with use_fused_ops(True):
                fused = features_and_gradients(model, x)
            with use_fused_ops(False):
                plain = features_and_gradients(model, x)
            worst[arch] = worst_error(fused, plain)
    if max(worst.values()) > FP32_TOL:
        raise Failed(f'fused and plain ops differ by {worst} (relative), more than {FP32_TOL}')
    return (f'features and gradients equal the plain ops within {max(worst.values()):.1e} '
            f'(<= {FP32_TOL}) for {", ".join(SMALL_ARCHS)}', dict(relative_error=worst))


def unsupported_autocast(p: Preflight, dtype: torch.dtype) -> Optional[str]:
    """Why autocast in `dtype` cannot run on the device, or None."""
    if p.device.type == 'cuda' and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return (f'{torch.cuda.get_device_name()} (sm_%d%d) has no bfloat16 (sm_80 or newer '
                'has)' % torch.cuda.get_device_capability())
    if not autocast_supports(p.device.type, dtype):
        return (f'autocast in {dtype} on {p.device.type} needs a newer torch than '
                f'{torch.__version__}')
    return None


def _autocast(p: Preflight, dtype: torch.dtype):
    why = unsupported_autocast(p, dtype)
    if why:
        raise Skip(why)
    errors, cosines = {}, {}
    with exact_float32():
        for arch in SMALL_ARCHS:
            model = p.backbone(arch).train()
            x = p.image()
            ref = features_and_gradients(model, x)
            with torch.autocast(p.device.type, dtype=dtype):
                low = features_and_gradients(model, x)
            if not all(torch.isfinite(t).all() for t in low[0] + low[1]):
                raise Failed(f'{arch}: a feature or gradient under {dtype} autocast is not finite')
            errors[arch] = max(((a - b).norm() / b.norm()).item() for a, b in zip(low[0], ref[0]))
            g_ref, g_low = (torch.cat([g.flatten() for g in run[1][1:]]) for run in (ref, low))
            cosines[arch] = F.cosine_similarity(g_ref, g_low, dim=0).item()
    if max(errors.values()) > LOW_PRECISION_TOL or min(cosines.values()) < GRADIENT_COSINE:
        raise Failed(f'features off by {errors} (relative L2, limit {LOW_PRECISION_TOL}), '
                     f'gradient cosines {cosines} (limit {GRADIENT_COSINE})')
    return (f'finite; features within {max(errors.values()):.1e} of float32 (<= '
            f'{LOW_PRECISION_TOL}), gradient cosine >= {min(cosines.values()):.4f}',
            dict(relative_l2=errors, gradient_cosine=cosines))


@check('autocast-fp16')
def _autocast_fp16(p: Preflight):
    return _autocast(p, torch.float16)


@check('autocast-bf16')
def _autocast_bf16(p: Preflight):
    return _autocast(p, torch.bfloat16)


@check('channels-last')
def _channels_last(p: Preflight):
    worst, low = {}, {}
    dtypes = [d for d in (torch.float16, torch.bfloat16) if unsupported_autocast(p, d) is None]
    with exact_float32():
        for arch in SMALL_ARCHS:
            model, x = p.backbone(arch).train(), p.image()
            ref = features_and_gradients(model, x)
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
            runs = {'float32': features_and_gradients(model, x)}
            for dtype in dtypes:
                with torch.autocast(p.device.type, dtype=dtype):
                    runs[str(dtype)[6:]] = features_and_gradients(model, x)
            for name, run in runs.items():
                if not all(torch.isfinite(t).all() for t in run[0] + run[1]):
                    raise Failed(f'{arch}: a channels_last feature or gradient in {name} is not '
                                 'finite')
            worst[arch] = worst_error(runs.pop('float32'), ref)
            low.update({
                f'{arch} {name}':
                max(((a - b).norm() / b.norm()).item() for a, b in zip(run[0], ref[0]))
                for name, run in runs.items()
            })
    if max(worst.values()) > FP32_TOL:
        raise Failed(f'channels_last features and gradients differ by {worst} (relative), more '
                     f'than {FP32_TOL}')
    if low and max(low.values()) > LOW_PRECISION_TOL:
        raise Failed(f'channels_last features under autocast off by {low} (relative L2), more '
                     f'than {LOW_PRECISION_TOL}')
    under = (f'; under {", ".join(str(d)[6:] for d in dtypes)} autocast finite and within '
             f'{max(low.values()):.1e} of float32 (<= {LOW_PRECISION_TOL})' if low else '')
    return (f'training features and gradients equal the contiguous run\'s within '
            f'{max(worst.values()):.1e} (<= {FP32_TOL}){under}',
            dict(relative_error=worst, autocast_relative_l2=low))


# SDPA's fused kernels as aten names them (CUDA's; the CPU's flash kernel)
FUSED_ATTENTION = re.compile(r'_scaled_dot_product_(flash_attention|efficient_attention|'
                             r'cudnn_attention|flash_attention_for_cpu)$')


class AttentionKernels(TorchDispatchMode):
    """Counts the aten operators below SDPA (its kernel choice) while active."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if 'scaled_dot_product' in name:
            self.calls[name] = self.calls.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


@check('sdpa')
def _sdpa(p: Preflight):
    cpu_kernel = hasattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu')
    if p.device.type == 'cpu' and not cpu_kernel:
        raise Skip(f'torch {torch.__version__} has no fused CPU attention kernel (its math path '
                   'runs on the CPU)')
    dtype = torch.float16 if p.device.type == 'cuda' else torch.bfloat16
    if unsupported_autocast(p, dtype):
        dtype = torch.float32
    taken = {}
    for arch in HEADLINE_ARCHS:
        model = p.backbone(arch).eval()
        layers = sum(len(stage.blocks) for stage in model.stages)
        x = p.image(1, p.size)
        with torch.no_grad(), torch.autocast(p.device.type, dtype=dtype,
                                             enabled=dtype != torch.float32), \
                AttentionKernels() as kernels:
            model(x)
        fused = {k: v for k, v in kernels.calls.items() if FUSED_ATTENTION.match(k)}
        if sum(fused.values()) != layers:
            raise Failed(f'{arch}: {sum(fused.values())} of {layers} attention layers ran a fused '
                         f'SDPA kernel at {p.size[0]}x{p.size[1]} in {dtype} (calls: '
                         f'{kernels.calls or "none"})')
        taken[arch] = sorted(k.split('_scaled_dot_product_')[1] for k in fused)
    return (f'every attention layer ran {taken} at {p.size[0]}x{p.size[1]} in {dtype}',
            dict(kernels=taken, dtype=str(dtype)))


@check('amp-train-step')
def _amp_train_step(p: Preflight):
    cuda = p.device.type == 'cuda'
    dtype = torch.float16 if cuda else torch.bfloat16
    why = unsupported_autocast(p, dtype)
    if why:
        raise Skip(why)
    measured = {}
    for arch in HEADLINE_ARCHS:
        model = p.backbone(arch, drop_path_rate=0.1).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler('cuda', enabled=cuda) if hasattr(torch, 'amp') and \
            hasattr(torch.amp, 'GradScaler') else torch.cuda.amp.GradScaler(enabled=cuda)
        x = p.image(2, p.size)
        reset_peak(p.device)
        start = time.perf_counter()
        # GradScaler starts at 2^16: an fp16 first step that overflows is skipped and the scale
        # halved, as in any AMP run; a step must go through within AMP_STEPS
        for step in range(1, AMP_STEPS + 1):
            optimizer.zero_grad()
            with torch.autocast(p.device.type, dtype=dtype):
                loss = sum(f.float().square().mean() for f in model(x))
            if not torch.isfinite(loss):
                raise Failed(f'{arch}: the {dtype} training step at {p.size[0]}x{p.size[1]} '
                             f'gave a non-finite loss ({loss.item()})')
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            finite = all(
                torch.isfinite(q.grad).all() for q in model.parameters() if q.grad is not None)
            scaler.step(optimizer)
            scaler.update()
            if finite:
                break
            if not cuda:  # bf16 has no scaler: a non-finite gradient is a failure
                raise Failed(f'{arch}: the {dtype} training step at {p.size[0]}x{p.size[1]} '
                             'gave a non-finite gradient')
        else:
            raise Failed(f'{arch}: {AMP_STEPS} fp16 steps at {p.size[0]}x{p.size[1]} all '
                         f'overflowed (loss scale now {scaler.get_scale()})')
        if cuda:
            torch.cuda.synchronize()
        measured[arch] = dict(steps=step, seconds=round(time.perf_counter() - start, 3),
                              peak_mib=round(peak_bytes(p.device) / 2**20, 1))
        del model, optimizer, scaler, x, loss  # the next model's peak is its own
    what = 'peak allocated' if cuda else 'process peak resident'
    summary = ', '.join(f'{a} {m["peak_mib"]:.0f} MiB {what}' for a, m in measured.items())
    return (f'batch 2 at {p.size[0]}x{p.size[1]} in {dtype}: finite; {summary}',
            dict(dtype=str(dtype), steps=measured))


@check('with-cp')
def _with_cp(p: Preflight):
    worst = {}
    with exact_float32():
        for arch in SMALL_ARCHS:
            x = p.image()
            plain = features_and_gradients(p.backbone(arch).train(), x)
            checkpointed = features_and_gradients(p.backbone(arch, with_cp=True).train(), x)
            worst[arch] = worst_error(checkpointed, plain)
    if max(worst.values()) > RECOMPUTE_TOL:
        raise Failed(f'with_cp gradients differ by {worst}, more than {RECOMPUTE_TOL}')
    return (f'gradients equal those without it within {max(worst.values()):.1e}',
            dict(relative_error=worst))


@check('torch.compile')
def _compile(p: Preflight):
    import torch._dynamo
    graphs = {}
    for arch in SMALL_ARCHS[:2]:
        model = p.backbone(arch).train()
        torch._dynamo.reset()
        explained = torch._dynamo.explain(lambda t: sum(o.sum() for o in model(t)))(p.image())
        graphs[arch] = (explained.graph_count, explained.graph_break_count)
        if graphs[arch] != (1, 0):
            raise Failed(f'{arch}: {explained.graph_count} graphs, '
                         f'{explained.graph_break_count} breaks: {explained.break_reasons[:1]}')
    torch._dynamo.reset()
    return 'dynamo captures the forward of ' + ', '.join(graphs) + ' as one graph, no break', {}


@check('distributed-run')
def _distributed_run(p: Preflight):
    data = osp.abspath(osp.join(p.work_dir, 'data'))
    if not osp.isdir(data):
        generate(data, num_train=8, num_val=4, img_size=(96, 128), max_objects=3,
                 size_range=(24, 64))
    lines, data_out = [], {}
    for config in DEMOS:
        name = osp.splitext(osp.basename(config))[0]
        run = DistributedRun(
            config, osp.join(p.work_dir, name), nproc=p.nproc,
            expected_samples=len(os.listdir(osp.join(data, 'images', 'validation'))),
            export_shape=(96, 128), env={'MMPVT_DEMO_DATA': f'{data}/'})
        seconds = 0.0
        for step in run.steps():
            data_out[f'{name}/{step.name}'] = dict(ok=step.ok, detail=step.detail,
                                                   seconds=round(step.seconds, 1))
            seconds += step.seconds
            if not step.ok:
                raise Failed(f'{name}: {step.line()} (logs: {run.work_dir})')
        lines.append(f'{name} in {seconds:.0f} s')
    return (f'{p.nproc} process(es) trained, checkpointed, resumed, tested and exported: ' +
            ', '.join(lines), dict(steps=data_out))
