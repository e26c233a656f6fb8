"""Side-by-side benchmark of one ImageNet training step: mmpvt's classifiers vs transformers'.

A training step is what the ImageNet recipe repeats: forward of a batch, cross-entropy against
labels, backward, gradients cleared. mmpvt's model is the classifier of our ImageNet config
(``configs/imagenet/pvt_{s,v2_b2}_300e.py``: the backbone, for PVTv2 the average-pooling neck,
the linear head), transformers' is ``PvtForImageClassification`` / ``PvtV2ForImageClassification``
configured to the same variant. Both are randomly initialised (the step's cost does not depend on
the values), without drop path or dropout, in fp32, and have the same number of parameters
(checked). They run in one process, interleaved step by step (A B A B ...), so both see the
same machine state. Peak memory of a step is measured as in :mod:`.benchmark`: on CPU the rise
of the resident memory of an isolated worker process per model, on CUDA
``torch.cuda.max_memory_allocated`` above what the model and batch already hold.
"""
import os
import platform
from typing import Callable, Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

from ..models.archs import PVT_ARCHS, PVTV2_ARCHS
from ..models.builder import build_from_config
from .benchmark import _peak_rss_bytes, _rss_bytes, _summary, _sync, in_worker, interleave

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = ('mmpvt', 'transformers')
# arch -> our ImageNet config
CONFIGS = {'tiny': 'pvt_t', 'small': 'pvt_s', 'medium': 'pvt_m', 'large': 'pvt_l',
           **{a: f'pvt_v2_{a}' for a in PVTV2_ARCHS}}


def config_path(arch: str) -> str:
    if arch not in CONFIGS:
        raise ValueError(f'no ImageNet config for arch {arch!r}; choose from {list(CONFIGS)}')
    return os.path.join(REPO, 'configs', 'imagenet', f'{CONFIGS[arch]}_300e.py')


def build_mmpvt(arch: str) -> nn.Module:
    """Our ImageNet config's classifier, drop path off, no pretrained weights."""
    cfg = Config.fromfile(config_path(arch))
    cfg.model.backbone.drop_path_rate = 0.0
    return build_from_config(cfg, pretrained=False)


def build_transformers(arch: str, num_classes: int = 1000, size: int = 224) -> nn.Module:
    """transformers' classifier of the same variant (our arch table, their config names). Its
    PVT v1 sizes the position tables for `size` and runs at that size only."""
    from transformers import (PvtConfig, PvtForImageClassification, PvtV2Config,
                              PvtV2ForImageClassification)
    if arch in PVT_ARCHS:
        a = PVT_ARCHS[arch]
        config = PvtConfig(hidden_sizes=list(a['embed_dims']), depths=list(a['depths']),
                           num_attention_heads=list(a['num_heads']),
                           mlp_ratios=list(a['mlp_ratios']),
                           sequence_reduction_ratios=list(a['sr_ratios']),
                           patch_sizes=list(a['patch_sizes']), strides=list(a['patch_sizes']),
                           image_size=size, num_labels=num_classes)
        return PvtForImageClassification(config)
    a = PVTV2_ARCHS[arch]
    config = PvtV2Config(hidden_sizes=list(a['embed_dims']), depths=list(a['depths']),
                         num_attention_heads=list(a['num_heads']),
                         mlp_ratios=list(a['mlp_ratios']), sr_ratios=list(a['sr_ratios']),
                         linear_attention=bool(a.get('linear', False)), num_labels=num_classes)
    return PvtV2ForImageClassification(config)


def build(name: str, arch: str, size: int = 224, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_mmpvt(arch) if name == 'mmpvt' else build_transformers(arch, size=size)
    return model.train()


def logits_of(name: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, K) logits: mmpretrain's 'tensor' mode (backbone, neck, head), transformers' .logits."""
    return model(x, mode='tensor') if name == 'mmpvt' else model(pixel_values=x).logits


def _train_step(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable:
    def step():
        loss = F.cross_entropy(logits_of(name, model, x), y)
        loss.backward()
        for p in model.parameters():
            p.grad = None
        _sync(x.device.type)
    return step


def _batch(batch: int, size: int, device: str, num_classes: int = 1000):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g)
    y = torch.randint(0, num_classes, (batch, ), generator=g)
    return x.to(device), y.to(device)


def time_interleaved(models: Dict[str, nn.Module], batch: int, size: int, warmup: int,
                     repeats: int, device: str) -> Dict[str, List[float]]:
    """Seconds per training step of each model, measured alternately."""
    x, y = _batch(batch, size, device)
    steps = {name: _train_step(name, model.to(device), x, y) for name, model in models.items()}
    return interleave(steps, warmup, repeats)


def _memory_worker(name: str, arch: str, batch: int, size: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    model = build(name, arch, size)
    x, y = _batch(batch, size, 'cpu')
    before = _rss_bytes()
    _train_step(name, model, x, y)()
    peak = _peak_rss_bytes()
    queue.put(dict(peak_bytes=peak, rise_bytes=max(peak - before, 0)))


def peak_memory(name: str, arch: str, batch: int, size: int, device: str = 'cpu',
                model: nn.Module = None) -> dict:
    """Peak memory of one training step of model `name` (see the module docstring)."""
    if device == 'cuda':
        x, y = _batch(batch, size, device)
        model = model.to(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _train_step(name, model, x, y)()
        peak = torch.cuda.max_memory_allocated()
        return dict(peak_bytes=peak, rise_bytes=peak - base)
    return in_worker(_memory_worker, (name, arch, batch, size, torch.get_num_threads()), name)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run(archs: Sequence[str] = ('small', 'b2'), batch: int = 32, size: int = 224,
        warmup: int = 2, repeats: int = 5, device: str = 'cpu', memory: bool = True,
        log: Callable[[str], None] = print) -> dict:
    """Measure each arch; returns the JSON-ready report (one entry per arch)."""
    report = dict(mode='classification training step', device=device, batch=batch, size=size,
                  threads=torch.get_num_threads(), torch=torch.__version__,
                  cpu=platform.processor() or platform.machine(), warmup=warmup,
                  repeats=repeats, results=[])
    for arch in archs:
        models = {name: build(name, arch, size) for name in MODELS}
        params = {name: num_params(m) for name, m in models.items()}
        # (transformers' PVT v1 at another size than 224 has other position-table sizes)
        if params['mmpvt'] != params['transformers'] and (arch in PVTV2_ARCHS or size == 224):
            raise RuntimeError(f'{arch}: the two models differ in size ({params}): not the same '
                               'variant')
        entry = dict(arch=arch, params=params['mmpvt'])
        times = time_interleaved(models, batch, size, warmup, repeats, device)
        for name in MODELS:
            entry[f'{name}/time'] = dict(_summary(times[name]),
                                         images_per_s=batch / _summary(times[name])['median_s'])
        entry['speedup'] = (entry['transformers/time']['median_s']
                            / entry['mmpvt/time']['median_s'])
        if memory:
            for name in MODELS:
                entry[f'{name}/memory'] = peak_memory(name, arch, batch, size, device,
                                                      models[name])
            entry['memory_ratio'] = (entry['mmpvt/memory']['rise_bytes']
                                     / entry['transformers/memory']['rise_bytes'])
        report['results'].append(entry)
        log(format_row(entry))
    return report


HEADER = ('arch    params      train step mmpvt / transformers (median) = speedup   '
          'peak-memory rise mmpvt / transformers = ratio')


def format_row(e: dict) -> str:
    row = (f"{e['arch']:<7} {e['params'] / 1e6:6.2f}M   "
           f"{e['mmpvt/time']['median_s'] * 1e3:8.1f} / "
           f"{e['transformers/time']['median_s'] * 1e3:8.1f} ms = {e['speedup']:4.2f}x")
    if 'memory_ratio' in e:
        row += (f"   {e['mmpvt/memory']['rise_bytes'] / 2**20:7.0f} / "
                f"{e['transformers/memory']['rise_bytes'] / 2**20:7.0f} MiB = "
                f"{e['memory_ratio']:4.2f}x")
    return row
