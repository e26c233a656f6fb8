"""Side-by-side benchmark of one ImageNet training step: mmpvt's classifiers vs transformers' and,
given a checkout of the authors' repository, the authors' own classification models.

A training step is what the ImageNet recipe repeats: forward of a batch, cross-entropy against
labels, backward, gradients cleared. mmpvt's model is the classifier of our ImageNet config
(``configs/imagenet/pvt_{s,v2_b2}_300e.py``: the backbone, for PVTv2 the average-pooling neck,
the linear head), transformers' is ``PvtForImageClassification`` / ``PvtV2ForImageClassification``
configured to the same variant; the authors' is ``pvt_{tiny,...}`` / ``pvt_v2_{b0,...}`` of
``classification/pvt.py`` / ``pvt_v2.py`` in a checkout of whai362/PVT (``authors_repo``; it
imports timm). All are randomly initialised (the step's cost does not depend on
the values), without drop path or dropout, in fp32, and have the same number of parameters
(checked). They run in one process, interleaved step by step (A B A B ...), so both see the
same machine state. Peak memory of a step is measured as in :mod:`.backbone`: on CPU the rise
of the resident memory of an isolated worker process per model, on CUDA
``torch.cuda.max_memory_allocated`` above what the model and batch already hold.
"""
import functools
import glob
import importlib.util
import os
import sys
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

from mmpvt.families import family_of
from mmpvt.models.builder import build_from_config
from .. import REPO
from ..flops import num_params
from ..measure import compared, cuda_peak, in_worker, interleave, machine, rss_rise, summary, sync

# the implementations always compared (the authors' joins them given their checkout)
IMPLEMENTATIONS = ('mmpvt', 'transformers')


@functools.lru_cache(maxsize=None)
def imagenet_configs() -> Dict[str, str]:
    """arch -> our ImageNet config (``configs/imagenet/*_300e.py``), as each config's backbone
    names its arch."""
    configs = {}
    with warnings.catch_warnings():  # mmengine re-imports pkg_resources per `mmpretrain::` base
        warnings.filterwarnings('ignore', 'pkg_resources is deprecated', UserWarning)
        for path in sorted(glob.glob(os.path.join(REPO, 'configs', 'imagenet', '*_300e.py'))):
            configs[Config.fromfile(path, import_custom_modules=False).model.backbone.arch] = path
    return configs


def config_path(arch: str) -> str:
    if arch not in imagenet_configs():
        raise ValueError(f'no ImageNet config for arch {arch!r}; choose from '
                         f'{list(imagenet_configs())}')
    return imagenet_configs()[arch]


def build_mmpvt(arch: str) -> nn.Module:
    """Our ImageNet config's classifier, drop path off, no pretrained weights."""
    cfg = Config.fromfile(config_path(arch))
    cfg.model.backbone.drop_path_rate = 0.0
    return build_from_config(cfg, pretrained=False)


def _transformers_pvt(a: dict, num_classes: int, size: int) -> nn.Module:
    from transformers import PvtConfig, PvtForImageClassification
    config = PvtConfig(
        hidden_sizes=list(a['embed_dims']), depths=list(a['depths']),
        num_attention_heads=list(a['num_heads']), mlp_ratios=list(a['mlp_ratios']),
        sequence_reduction_ratios=list(a['sr_ratios']), patch_sizes=list(a['patch_sizes']),
        strides=list(a['patch_sizes']), image_size=size, num_labels=num_classes)
    return PvtForImageClassification(config)


def _transformers_pvt_v2(a: dict, num_classes: int, size: int) -> nn.Module:
    from transformers import PvtV2Config, PvtV2ForImageClassification
    config = PvtV2Config(
        hidden_sizes=list(a['embed_dims']), depths=list(a['depths']),
        num_attention_heads=list(a['num_heads']), mlp_ratios=list(a['mlp_ratios']),
        sr_ratios=list(a['sr_ratios']), linear_attention=bool(a.get('linear',
                                                                    False)), num_labels=num_classes)
    return PvtV2ForImageClassification(config)


# transformers' classifier of each family, from our arch table, and whether its size depends on
# the image size (its PVT v1 sizes the position tables for `size` and runs at that size only)
TRANSFORMERS = {'PVT': (_transformers_pvt, True), 'PVTv2': (_transformers_pvt_v2, False)}
# the authors' model file (classification/ of whai362/PVT) and factory of each family
AUTHORS = {'PVT': ('pvt.py', 'pvt_{arch}'), 'PVTv2': ('pvt_v2.py', 'pvt_v2_{arch}')}


def build_transformers(arch: str, num_classes: int = 1000, size: int = 224) -> nn.Module:
    """transformers' classifier of the same variant (our arch table, their config names)."""
    family = family_of(arch)
    return TRANSFORMERS[family.name][0](family.archs[arch], num_classes, size)


def authors_model_file(arch: str, repo: str) -> str:
    """The authors' model file of `arch` in a checkout `repo` of whai362/PVT (FileNotFoundError
    naming the path otherwise)."""
    path = os.path.join(repo, 'classification', AUTHORS[family_of(arch).name][0])
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'--authors-repo {repo}: expected the authors\' model file {path} (a checkout of '
            'https://github.com/whai362/PVT, whose classification/ holds pvt.py and pvt_v2.py)')
    return path


def build_authors(arch: str, repo: str, num_classes: int = 1000) -> nn.Module:
    """The authors' classifier of `arch` (their factory ``pvt_<arch>`` / ``pvt_v2_<arch>``),
    drop path off, loaded from the checkout `repo` (see :func:`authors_model_file`)."""
    path = authors_model_file(arch, repo)
    module_name = f'_authors_{os.path.splitext(os.path.basename(path))[0]}'
    module = sys.modules.get(module_name)
    if module is None or getattr(module, '__file__', None) != path:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # timm's register_model looks the module up there
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    factory_name = AUTHORS[family_of(arch).name][1].format(arch=arch)
    factory = getattr(module, factory_name, None)
    if factory is None:
        raise AttributeError(f'{path} defines no {factory_name}() for arch {arch!r}')
    return factory(num_classes=num_classes, drop_path_rate=0.0)


def build(name: str, arch: str, size: int = 224, seed: int = 0,
          authors_repo: Optional[str] = None) -> nn.Module:
    torch.manual_seed(seed)
    if name == 'mmpvt':
        model = build_mmpvt(arch)
    elif name == 'transformers':
        model = build_transformers(arch, size=size)
    elif name == 'authors':
        model = build_authors(arch, authors_repo)
    else:
        raise ValueError(f'unknown model {name!r}; choose from {IMPLEMENTATIONS + ("authors", )}')
    return model.train()


def logits_of(name: str, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, K) logits: mmpretrain's 'tensor' mode (backbone, neck, head), transformers' .logits,
    the authors' plain forward."""
    if name == 'mmpvt':
        return model(x, mode='tensor')
    if name == 'transformers':
        return model(pixel_values=x).logits
    return model(x)


def _train_step(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable:

    def step():
        loss = F.cross_entropy(logits_of(name, model, x), y)
        loss.backward()
        for p in model.parameters():
            p.grad = None
        sync(x.device.type)

    return step


def _batch(batch: int, size: int, device: str, num_classes: int = 1000):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=g)
    y = torch.randint(0, num_classes, (batch, ), generator=g)
    return x.to(device), y.to(device)


def time_interleaved(models: Dict[str, nn.Module], batch: int, size: int, warmup: int, repeats: int,
                     device: str) -> Dict[str, List[float]]:
    """Seconds per training step of each model, measured alternately."""
    x, y = _batch(batch, size, device)
    steps = {name: _train_step(name, model.to(device), x, y) for name, model in models.items()}
    return interleave(steps, warmup, repeats)


def _memory_worker(name: str, arch: str, batch: int, size: int, threads: int,
                   authors_repo: Optional[str], queue) -> None:
    torch.set_num_threads(threads)
    model = build(name, arch, size, authors_repo=authors_repo)
    x, y = _batch(batch, size, 'cpu')
    queue.put(rss_rise(_train_step(name, model, x, y)))


def peak_memory(name: str, arch: str, batch: int, size: int, device: str = 'cpu',
                model: nn.Module = None, authors_repo: Optional[str] = None) -> dict:
    """Peak memory of one training step of model `name` (see the module docstring)."""
    if device == 'cuda':
        x, y = _batch(batch, size, device)
        model = model.to(device)
        return cuda_peak(_train_step(name, model, x, y))
    return in_worker(_memory_worker,
                     (name, arch, batch, size, torch.get_num_threads(), authors_repo), name)


def model_names(authors_repo: Optional[str] = None) -> Tuple[str, ...]:
    """The models a run times: mmpvt and transformers, and the authors' given their checkout."""
    return IMPLEMENTATIONS + (('authors', ) if authors_repo else ())


def run(archs: Sequence[str] = ('small', 'b2'), batch: int = 32, size: int = 224, warmup: int = 2,
        repeats: int = 5, device: str = 'cpu', memory: bool = True,
        authors_repo: Optional[str] = None, log: Callable[[str], None] = print) -> dict:
    """Measure each arch; returns the JSON-ready report (one entry per arch).

    ``speedup`` is the faster peer's median step time over mmpvt's, ``memory_ratio`` mmpvt's
    peak-memory rise over the leaner peer's; ``speedup_vs`` / ``memory_ratio_vs`` per peer."""
    names = model_names(authors_repo)
    report = dict(mode='classification training step', device=device, batch=batch, size=size,
                  **machine(), warmup=warmup, repeats=repeats, models=list(names), results=[])
    for arch in archs:
        models = {name: build(name, arch, size, authors_repo=authors_repo) for name in names}
        params = {name: num_params(m) for name, m in models.items()}
        # (transformers' PVT v1 at another size than 224 has other position-table sizes)
        sized = TRANSFORMERS[family_of(arch).name][1]
        compared = {
            n: p
            for n, p in params.items() if n != 'transformers' or not sized or size == 224
        }
        if len(set(compared.values())) != 1:
            raise RuntimeError(f'{arch}: the models differ in size ({params}): not the same '
                               'variant')
        entry = dict(arch=arch, params=params['mmpvt'])
        times = time_interleaved(models, batch, size, warmup, repeats, device)
        for name in names:
            entry[f'{name}/time'] = dict(
                summary(times[name]), images_per_s=batch / summary(times[name])['median_s'])
        ours = entry['mmpvt/time']['median_s']
        entry['speedup_vs'] = {n: entry[f'{n}/time']['median_s'] / ours for n in names[1:]}
        entry['speedup'] = min(entry['speedup_vs'].values())
        if memory:
            for name in names:
                entry[f'{name}/memory'] = peak_memory(name, arch, batch, size, device, models[name],
                                                      authors_repo)
            rise = entry['mmpvt/memory']['rise_bytes']
            entry['memory_ratio_vs'] = {
                n: rise / entry[f'{n}/memory']['rise_bytes']
                for n in names[1:]
            }
            entry['memory_ratio'] = max(entry['memory_ratio_vs'].values())
        report['results'].append(entry)
        log(format_row(entry))
    return report


def header(names: Sequence[str] = IMPLEMENTATIONS) -> str:
    peers = ' / '.join(names)
    return (f'arch    params      train step {peers} (median ms) = speedup over the faster peer   '
            f'peak-memory rise {peers} (MiB) = ratio to the leaner peer')


def format_row(e: dict) -> str:
    """One line of the table under :func:`header`."""
    names = ['mmpvt', *e['speedup_vs']]
    ms = [e[f'{n}/time']['median_s'] * 1e3 for n in names]
    row = f"{e['arch']:<7} {e['params'] / 1e6:6.2f}M   {compared(ms, '.1f', e['speedup'])}"
    if 'memory_ratio' in e:
        mib = [e[f'{n}/memory']['rise_bytes'] / 2**20 for n in names]
        row += f"   {compared(mib, '.0f', e['memory_ratio'])}"
    return row
