"""Forward latency of one model in three runtimes, side by side in one process: eager PyTorch,
``torch.compile`` (inductor) and onnxruntime (CPU execution provider, the graph written by
:mod:`mmpvt.deploy.export` with symbolic sizes), interleaved repeat by repeat so all three see
the same machine state. Used by ``tools/analysis/benchmark_deploy.py``.

Models: a backbone (``--arch``) and RetinaNet (a config the tool names) up to its
raw head outputs, which is exactly what the ONNX graph holds (decoding and NMS run outside it).
"""
import os
import statistics
import tempfile
import time
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from mmpvt.deploy.export import DenseDetectorGraph, export_backbone, export_onnx
from mmpvt.deploy.specs import IMAGE, level_names, symbolic_axes
from mmpvt.models import build_backbone
from mmpvt.models.builder import build_from_config
from .. import REPO
from ..measure import interleave

RUNTIMES = ('eager', 'compile', 'onnxruntime')


def build_retinanet(config: str) -> nn.Module:
    """RetinaNet of `config` up to its raw head outputs, PyTorch's default init (timing needs no
    more)."""
    torch.manual_seed(0)
    return DenseDetectorGraph(build_from_config(Config.fromfile(config), pretrained=False)).eval()


def random_backbone(arch: str) -> nn.Module:
    """The `arch` backbone with the authors' random init (seed 0), no drop path, in eval mode."""
    torch.manual_seed(0)
    model = build_backbone(arch, drop_path_rate=0.0)
    model.init_weights()
    return model.eval()


def _session(model: nn.Module, kind: str, tmp: str):
    import onnxruntime as ort
    path = os.path.join(tmp, f'{kind}.onnx')
    if kind == 'backbone':
        export_backbone(model, path, shape=(1, 3, 224, 320))
    else:
        levels = len(model.detector.bbox_head.prior_generator.strides)
        export_onnx(model, (torch.randn(1, 3, 256, 320), ), path, ['input'],
                    level_names(('cls', 'reg'), levels), symbolic_axes(input=IMAGE))
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def _max_error(a, b) -> float:
    return max((torch.as_tensor(x) - y).abs().max().item() for x, y in zip(a, b))


def run(kind: str, arch: str, shapes: Sequence[Tuple[int, int]], warmup: int = 2, repeats: int = 5,
        config: Optional[str] = None) -> List[dict]:
    """kind: 'backbone' (`arch`) or 'retinanet' (the model of `config`, labelled `arch`). One
    row per shape: median ms per runtime, ratios to eager, and the max abs difference of each
    runtime's outputs from eager's."""
    if kind == 'retinanet' and config is None:
        raise ValueError("run('retinanet', ...) needs the config= of the RetinaNet to time")
    model = random_backbone(arch) if kind == 'backbone' else build_retinanet(config)
    compiled = torch.compile(model, dynamic=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        session = _session(model, kind, tmp)
        for h, w in shapes:
            x = torch.randn(1, 3, h, w)
            feeds = {'input': x.numpy()}
            steps = {
                'eager': lambda: model(x),
                'compile': lambda: compiled(x),
                'onnxruntime': lambda: session.run(None, feeds)
            }
            t0 = time.perf_counter()
            reference = model(x)
            errors = {
                'compile': _max_error(compiled(x), reference),
                'onnxruntime': _max_error(session.run(None, feeds), reference)
            }
            compile_s = time.perf_counter() - t0
            times = interleave(steps, warmup, repeats)
            ms = {name: statistics.median(v) * 1e3 for name, v in times.items()}
            rows.append(
                dict(kind=kind, arch=arch, shape=[h, w], ms=ms,
                     speedup={n: ms['eager'] / ms[n]
                              for n in RUNTIMES[1:]}, max_abs_error=errors, first_call_s=compile_s,
                     threads=torch.get_num_threads()))
    return rows


def format_row(row: dict) -> str:
    ms, up = row['ms'], row['speedup']
    return (f'{row["kind"]:9s} {row["arch"]:6s} {row["shape"][0]}x{row["shape"][1]:<5d} '
            f'eager {ms["eager"]:8.1f} ms | compile {ms["compile"]:8.1f} ms '
            f'({up["compile"]:.2f}x) | onnxruntime {ms["onnxruntime"]:8.1f} ms '
            f'({up["onnxruntime"]:.2f}x) | max |diff| compile '
            f'{row["max_abs_error"]["compile"]:.1e}, ort {row["max_abs_error"]["onnxruntime"]:.1e}')


# The paper's RetinaNet 1x config of each PVT v1 variant (Table 3)
RETINANET_CONFIGS = {
    'tiny': 'pvt_t_1x.py',
    'small': 'pvt_s_1x.py',
    'medium': 'pvt_m_1x.py',
    'large': 'pvt_l_1x.py'
}


def run_all(archs: Sequence[str], shapes: Sequence[Tuple[int, int]], warmup: int = 2,
            repeats: int = 5, retinanet: bool = False, log: Callable[[str],
                                                                     None] = print) -> List[dict]:
    """The rows of :func:`run` for each backbone of `archs`, then with `retinanet` for
    RetinaNet + each PVT v1 arch of them (``configs/retinanet/pvt_{t,s,m,l}_1x.py``); each row is
    logged as it is measured."""
    jobs = [('backbone', a) for a in archs]
    if retinanet:
        jobs += [('retinanet', a) for a in archs if a in RETINANET_CONFIGS]
    rows = []
    for kind, arch in jobs:
        config = os.path.join(REPO, 'configs', 'retinanet', RETINANET_CONFIGS.get(arch, ''))
        for row in run(kind, arch, shapes, warmup, repeats,
                       config=config if kind == 'retinanet' else None):
            log(format_row(row))
            rows.append(row)
    return rows
