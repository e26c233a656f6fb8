"""Parameters and FLOPs through mmengine's analysis, with attention counted.

mmengine's FlopAnalyzer (fvcore's counting: one FLOP per multiply-add, as the paper's Table 2)
traces the model and counts each op it has a handler for. ``scaled_dot_product_attention`` has
none, so a fused attention call would silently count as zero: we add the handler.
"""
from collections import Counter
from typing import Any, List, Optional, Sequence, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.analysis.jit_handles import get_shape
from torch import nn

from ..models import build_backbone
from ..models.builder import build_from_config


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> Counter:
    """Multiply-adds of softmax(q k^T) v: B*h*N*M*(d_qk + d_v) (the softmax itself not counted,
    as fvcore does for every elementwise op)."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    *batch, n, d = q
    m, dv = k[-2], v[-1]
    b = 1
    for size in batch:
        b *= size
    return Counter({'scaled_dot_product_attention': b * n * m * (d + dv)})


def count_flops(model: nn.Module, inputs: Tuple[Any, ...]) -> FlopAnalyzer:
    """A FlopAnalyzer for ``model(*inputs)`` that also counts fused attention."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def backbone_complexity(arch: str = 'small', shape: Sequence[int] = (224, 224)) -> dict:
    """Parameters and GFLOPs of a PVT or PVTv2 backbone alone at input size `shape` (H, W).

    Counted: every convolution (depth-wise ones with their groups), linear layer and attention
    product (the fused SDPA call included).
    """
    model = build_backbone(arch).eval()
    with torch.no_grad():
        flops = count_flops(model, (torch.zeros(1, 3, *shape),)).total()
    return dict(model=f'{model.family}-{arch}', shape=tuple(shape), params=num_params(model),
                gflops=flops / 1e9)


class _TensorForward(nn.Module):
    """model._forward(inputs, data_samples) as a plain module the tracer can call."""

    def __init__(self, model: nn.Module, data_samples: Optional[list]) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, x: torch.Tensor):
        return self.model._forward(x, self.data_samples)


def config_complexity(config: str, shape: Optional[Sequence[int]] = None,
                      cfg_options: Optional[dict] = None) -> dict:
    """Parameters and GFLOPs (whole model and backbone) of the model a config builds.

    shape: (H, W) of the input; default 800x1333 for detection, 512x512 for segmentation.
    cfg_options: config entries to override first (``--cfg-options``), e.g. a head variant.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = build_from_config(cfg, pretrained=False).eval()  # no download for counting
    if cfg.default_scope == 'mmseg':
        shape = tuple(shape or (512, 512))
        data_samples = None
    else:
        from mmdet.structures import DetDataSample  # mmdet only for a detection config
        shape = tuple(shape or (800, 1333))
        meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape,
                    scale_factor=(1.0, 1.0))
        data_samples = [DetDataSample(metainfo=meta)]
    x = torch.zeros(1, 3, *shape)
    with torch.no_grad():
        total = count_flops(_TensorForward(model, data_samples), (x,))
        by_module = total.by_module()
    return dict(model=config, shape=shape, params=num_params(model),
                backbone_params=num_params(model.backbone),
                gflops=total.total() / 1e9, backbone_gflops=by_module['model.backbone'] / 1e9)
