"""Timing and memory measurement that every benchmark of :mod:`mmpvt_tools.benchmarks` uses.

Timing: :func:`interleave` runs several steps in turn (A B A B ...), so that every step sees the
same machine state, and :func:`summary` reduces a list of seconds to median / min / max. A step
ends with :func:`sync` of its device, so that a CUDA step is timed to its end, not to its launch.

Memory: on CPU the resident memory of a fresh worker process (:func:`in_worker`) around one step
(:func:`rss_rise`); on CUDA ``torch.cuda.max_memory_allocated`` around one step
(:func:`cuda_peak`). Both return ``dict(peak_bytes=..., rise_bytes=...)``.
"""
import json
import multiprocessing as mp
import os
import platform
import re
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch

from mmpvt.fileio import atomic_path

# --amp names -> autocast dtypes
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
# the input sides the measuring tools (benchmarks, get_flops) take: 4096 x 4096 is 16x the pixels
# of the paper's 1333 x 800 detection input (a 20000 x 20000 one ran to 5.6 GB before failing)
MIN_SIDE, MAX_SIDE = 32, 4096


def autocast(device: str, amp: Optional[str]) -> torch.autocast:
    """``torch.autocast`` on `device` ('cpu', 'cuda', 'cuda:N') in the dtype of `amp` ('bf16',
    'fp16'); disabled (fp32) when `amp` is None."""
    return torch.autocast(
        device.split(':')[0], dtype=AMP_DTYPES[amp or 'bf16'], enabled=amp is not None)


def sync(device: str) -> None:
    """Wait for the work queued on `device` ('cpu': nothing to wait for; 'cuda', 'cuda:N')."""
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)


def timed(step: Callable[[], object], device: str = 'cpu') -> float:
    """Seconds of one call of `step` on `device`, to the end of its work (synchronised before and
    after)."""
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def interleave(steps: Dict[str, Callable[[], object]], warmup: int,
               repeats: int) -> Dict[str, List[float]]:
    """Seconds of each call of each step, `warmup` untimed rounds first, then `repeats` rounds
    in turn (A B A B ...): every step sees the same machine state."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


def summary(times: Sequence[float]) -> dict:
    """``median_s``, ``min_s``, ``max_s`` and ``repeats`` (the number of times) of `times`
    (seconds)."""
    return dict(
        median_s=statistics.median(times), min_s=min(times), max_s=max(times), repeats=len(times))


def rss_bytes() -> int:
    """Resident memory of this process now."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def peak_rss_bytes() -> int:
    """High-water mark of this process's own address space (VmHWM).

    Not getrusage's ru_maxrss: Linux carries that across fork+exec, so a spawned worker would
    report its parent's peak.
    """
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('VmHWM not found in /proc/self/status')


def rss_rise(step: Callable[[], object]) -> dict:
    """One call of `step` in this process: the peak resident memory after it and its rise over
    the resident memory just before it (meaningful in a fresh worker, see :func:`in_worker`)."""
    before = rss_bytes()
    step()
    peak = peak_rss_bytes()
    return dict(peak_bytes=peak, rise_bytes=max(peak - before, 0))


def cuda_peak(step: Callable[[], object]) -> dict:
    """One call of `step` on the current CUDA device: the peak allocated memory and its rise over
    what was allocated before (the model and its inputs)."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step()
    peak = torch.cuda.max_memory_allocated()
    return dict(peak_bytes=peak, rise_bytes=peak - base)


def reset_peak(device: torch.device) -> None:
    """Start a new peak-memory measurement on `device`: CUDA's allocator statistics, or on CPU
    the process's peak resident memory (Linux: writing '5' to /proc/self/clear_refs resets
    VmHWM to the current resident memory; elsewhere the peak since the start stays)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def peak_bytes(device: torch.device) -> int:
    """Peak allocated CUDA memory, or the process's peak resident memory, since
    :func:`reset_peak`."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device)
    return peak_rss_bytes()


def in_worker(target: Callable, args: tuple, name: str) -> dict:
    """What ``target(*args, queue)`` puts on its queue, run in a fresh (spawned) process, so
    that nothing of this one is in the worker's memory peak."""
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get(timeout=1800)
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f'memory worker for {name} failed with exit code {proc.exitcode}')
    return result


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo, e.g. 'AMD EPYC'), else what platform knows
    (``platform.processor()`` is empty on many Linux machines)."""
    try:
        with open('/proc/cpuinfo') as f:
            names = re.findall(r'^model name\s*:\s*(.+)$', f.read(), re.M)
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def machine() -> dict:
    """What a report records of the machine: torch ``threads``, the ``torch`` version and the
    ``cpu``."""
    return dict(threads=torch.get_num_threads(), torch=torch.__version__, cpu=cpu_name())


def compared(values: Sequence[float], spec: str, ratio: float, unit: str = '') -> str:
    """A table cell comparing implementations: ``'12.3 / 14.1 ms = 1.15x'`` for
    ``compared([12.3, 14.1], '.1f', 1.15, ' ms')``; each value formatted with `spec`."""
    return ' / '.join(format(v, spec) for v in values) + f'{unit} = {ratio:4.2f}x'


def save_report(report: dict, path: str) -> None:
    """`report` as indented JSON at `path`, written atomically (its folder made if missing)."""
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump(report, f, indent=1)
