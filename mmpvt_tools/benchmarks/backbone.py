"""Side-by-side benchmark of mmpvt's backbones and mmdet 3.x's ports of them.

PVT (tiny/small/medium/large) runs against mmdet's ``PyramidVisionTransformer``, PVTv2 (b0..b5)
against ``PyramidVisionTransformerV2`` (mmdet has no b2-li: it lacks linear SRA). Both models
hold identical weights (mmpvt's random init, exported to the official layout and read by mmdet's
own ``pvt_convert``) and run in the same process, interleaved repeat by repeat, so both
see the same machine state. Peak memory of forward+backward is measured on CPU as the peak
resident memory of an isolated worker process per (model, setting) - the rise over the worker's
resident memory just before the step, and the absolute peak - and on CUDA with
``torch.cuda.max_memory_allocated``.
"""
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from mmpvt.families import FAMILIES, convert_to_mmpvt, family_of
from mmpvt.models import build_backbone
from ..measure import (autocast, compared, cuda_peak, in_worker, interleave, machine, rss_rise,
                       summary, sync)

# the two implementations compared, in the order of the report and the table
IMPLEMENTATIONS = ('mmpvt', 'mmdet')


def _mmdet_pvt(ours: nn.Module) -> nn.Module:
    from mmdet.models.backbones.pvt import PyramidVisionTransformer

    # mmdet's stage widths are 64 x num_heads (small_wide: 64, 192, 448, 704)
    return PyramidVisionTransformer(
        num_layers=list(ours.arch['depths']), drop_path_rate=0.0,
        num_heads=list(ours.arch['num_heads']))


def _mmdet_pvt_v2(ours: nn.Module) -> nn.Module:
    from mmdet.models.backbones.pvt import PyramidVisionTransformerV2

    # mmdet's width argument is the head width; stage widths are it x num_heads
    return PyramidVisionTransformerV2(embed_dims=ours.embed_dims[0],
                                      num_layers=list(ours.arch['depths']),
                                      mlp_ratios=list(ours.arch['mlp_ratios']), drop_path_rate=0.0)


# mmdet 3.3's port of each family, built like our model; it has no linear SRA (no b2-li)
MMDET_PORTS = {'PVT': _mmdet_pvt, 'PVTv2': _mmdet_pvt_v2}
ARCHS = tuple(arch for name in MMDET_PORTS for arch, settings in FAMILIES[name].archs.items()
              if not settings.get('linear', False))


def build_pair(arch: str, seed: int = 0) -> Dict[str, nn.Module]:
    """mmpvt's backbone and mmdet's port of it with identical weights, no drop path."""
    from mmdet.models.backbones.pvt import pvt_convert
    if arch not in ARCHS:
        raise ValueError(f'no mmdet counterpart for arch {arch!r}; choose from {list(ARCHS)}')
    torch.manual_seed(seed)
    family = family_of(arch)
    ours = build_backbone(arch, drop_path_rate=0.0)
    ours.init_weights()
    theirs = MMDET_PORTS[family.name](ours)
    theirs.load_state_dict(pvt_convert(family.to_official(ours.state_dict())), strict=True)
    # sanity: mmdet's weights read back into mmpvt's layout are ours, bit for bit
    back = convert_to_mmpvt(theirs.state_dict())[0]
    assert all(torch.equal(back[k], v) for k, v in ours.state_dict().items())
    return dict(mmpvt=ours, mmdet=theirs)


def max_feature_difference(models: Dict[str, nn.Module], shape: Tuple[int, int]) -> float:
    """Max |mmpvt - mmdet| over F1..F4 at `shape` rounded down to a multiple of 32.

    Where 32 does not divide the size the two differ by design (mmpvt pads, mmdet drops the
    border), so the comparison is made where both see the same pixels.
    """
    h, w = (max(32, s // 32 * 32) for s in shape)
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = models['mmpvt'].eval()(x)
        b = models['mmdet'].eval()(x)
    assert [t.shape for t in a] == [t.shape for t in b]
    return max((i - j).abs().max().item() for i, j in zip(a, b))


def _step_fn(model: nn.Module, x: torch.Tensor, mode: str, amp: Optional[str]) -> Callable:
    """One forward (no_grad) or forward+backward of `model` on `x`, under autocast if `amp`."""
    device = x.device.type

    def step():
        with autocast(device, amp):
            if mode == 'forward':
                with torch.no_grad():
                    model(x)
                sync(device)
                return
            loss = sum(o.float().mean() for o in model(x))
        loss.backward()
        for p in model.parameters():
            p.grad = None
        sync(device)

    return step


def time_interleaved(models: Dict[str, nn.Module], shape: Tuple[int, int], batch: int, mode: str,
                     warmup: int, repeats: int, device: str = 'cpu',
                     amp: Optional[str] = None) -> Dict[str, List[float]]:
    """Seconds per step for each model, measured alternately (A B A B ...)."""
    x = torch.randn(batch, 3, *shape, device=device)
    steps = {}
    for name, model in models.items():
        model.to(device).train(mode == 'forward+backward')
        steps[name] = _step_fn(model, x, mode, amp)
    return interleave(steps, warmup, repeats)


def _memory_worker(arch: str, name: str, shape: Tuple[int, int], batch: int, amp: Optional[str],
                   threads: int, queue) -> None:
    torch.set_num_threads(threads)
    model = build_pair(arch)[name].train()
    x = torch.randn(batch, 3, *shape)
    queue.put(rss_rise(_step_fn(model, x, 'forward+backward', amp)))


def peak_memory(arch: str, name: str, shape: Tuple[int, int], batch: int, device: str = 'cpu',
                amp: Optional[str] = None, models: Optional[Dict[str, nn.Module]] = None) -> dict:
    """Peak memory of one forward+backward of model `name`."""
    if device == 'cuda':
        model = models[name].to(device).train()
        x = torch.randn(batch, 3, *shape, device=device)
        return cuda_peak(_step_fn(model, x, 'forward+backward', amp))
    return in_worker(_memory_worker, (arch, name, shape, batch, amp, torch.get_num_threads()), name)


def matmul_gflops(device: str = 'cpu', n: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 matmul throughput of this machine (GFLOP/s, 2 n^3 per product)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    sync(device)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def run_benchmark(archs: Sequence[str] = ('small', ),
                  shapes: Sequence[Tuple[int, int]] = ((224, 224), (512, 512), (800, 1333)),
                  batches: Sequence[int] = (1, ), warmup: int = 2, repeats: int = 5,
                  device: str = 'cpu', amp: Optional[str] = None, memory: bool = True,
                  log: Callable[[str], None] = print) -> dict:
    """Measure every (arch, shape, batch); returns the JSON-ready report."""
    from ..flops import count_flops
    machine_gflops = matmul_gflops(device)
    report = dict(device=device, amp=amp, **machine(), warmup=warmup, repeats=repeats,
                  matmul_fp32_gflops=machine_gflops, results=[])
    for arch in archs:
        models = build_pair(arch)
        for shape in shapes:
            with torch.no_grad():
                macs = count_flops(models['mmpvt'].eval(), (torch.zeros(1, 3, *shape), )).total()
            diff = max_feature_difference(models, shape)
            for batch in batches:
                entry = dict(arch=arch, shape=list(shape), batch=batch, gflops_per_image=macs / 1e9,
                             max_abs_feature_diff=diff)
                for mode in ('forward', 'forward+backward'):
                    times = time_interleaved(models, shape, batch, mode, warmup, repeats, device,
                                             amp)
                    for name in IMPLEMENTATIONS:
                        s = summary(times[name])
                        s['images_per_s'] = batch / s['median_s']
                        # 2 FLOPs per multiply-add; backward costs about twice the forward
                        work = 2 * macs * batch * (1 if mode == 'forward' else 3)
                        s['achieved_gflops'] = work / s['median_s'] / 1e9
                        s['fraction_of_matmul_peak'] = s['achieved_gflops'] / machine_gflops
                        entry[f'{name}/{mode}'] = s
                    entry[f'speedup/{mode}'] = (
                        entry[f'mmdet/{mode}']['median_s'] / entry[f'mmpvt/{mode}']['median_s'])
                if memory:
                    for name in IMPLEMENTATIONS:
                        entry[f'{name}/memory'] = peak_memory(arch, name, shape, batch, device, amp,
                                                              models)
                    entry['memory_ratio'] = (
                        entry['mmpvt/memory']['rise_bytes'] / entry['mmdet/memory']['rise_bytes'])
                report['results'].append(entry)
                log(format_row(entry))
    return report


def format_row(e: dict) -> str:
    """One line of the table under :data:`HEADER`: median latencies and their ratio per mode,
    and the peak-memory rises where measured."""

    def ms(mode):
        return compared([e[f'{n}/{mode}']['median_s'] * 1e3 for n in IMPLEMENTATIONS], '8.1f',
                        e[f'speedup/{mode}'], ' ms')

    row = (f"{e['arch']:<7}{e['shape'][0]:>5}x{e['shape'][1]:<5} b{e['batch']:<3}"
           f"fwd {ms('forward')}   fwd+bwd {ms('forward+backward')}")
    if 'memory_ratio' in e:
        mib = [e[f'{n}/memory']['rise_bytes'] / 2**20 for n in IMPLEMENTATIONS]
        row += f"   mem {compared(mib, '7.0f', e['memory_ratio'], ' MiB')}"
    return row


HEADER = ('arch   input        batch  mmpvt / mmdet (median) = speedup         '
          'mmpvt / mmdet (median) = speedup        peak-memory rise mmpvt / mmdet')


def plot(report: dict, path: str) -> str:
    """Latency vs input scale for both models (the paper's Fig. 6 view), one line per mode."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arch in sorted({e['arch'] for e in report['results']}):
        rows = sorted(
            (e for e in report['results']
             if e['arch'] == arch and e['batch'] == min(r['batch'] for r in report['results'])),
            key=lambda e: e['shape'][0] * e['shape'][1])
        scale = [f"{e['shape'][0]}x{e['shape'][1]}" for e in rows]
        for name, style in (('mmpvt', '-o'), ('mmdet', '--s')):
            for mode in ('forward', 'forward+backward'):
                ax.plot(scale, [e[f'{name}/{mode}']['median_s'] * 1e3 for e in rows], style,
                        label=f'{name} {arch} {mode}')
    ax.set_xlabel('input size')
    ax.set_ylabel('latency (ms, median)')
    ax.set_yscale('log')
    ax.set_title(f"Backbone latency vs input size ({report['device']}, "
                 f"{report['threads']} threads)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summary_lines(report: dict) -> List[str]:
    """Per result: the achieved GFLOP/s of both forwards, mmpvt's as a share of the machine's
    matmul throughput, and the largest feature difference."""
    return [
        f"  {e['arch']} {e['shape'][0]}x{e['shape'][1]} b{e['batch']}: mmpvt forward "
        f"{e['mmpvt/forward']['achieved_gflops']:.1f} GFLOP/s "
        f"({100 * e['mmpvt/forward']['fraction_of_matmul_peak']:.0f}% of matmul), mmdet "
        f"{e['mmdet/forward']['achieved_gflops']:.1f} GFLOP/s; max |feature diff| "
        f"{e['max_abs_feature_diff']:.1e}" for e in report['results']
    ]
