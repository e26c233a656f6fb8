"""Parameters and FLOPs through mmengine's analysis, with attention counted, under two protocols.

Both count one FLOP per multiply-add and trace the model with mmengine's FlopAnalyzer:

* ``'paper'`` (default): the counting rules of the PVT authors' ``get_flops.py``, which ran mmcv
  1.x's ``get_model_complexity_info`` on ``forward_dummy`` and added the attention products by
  hand. Counted: convolutions (k^2 Cin Cout / groups per output position, *plus* the bias), linear
  layers (without the bias), affine LayerNorm/BatchNorm/GroupNorm (2 per element, 1 without the
  affine), ReLU and pools (1 per element) and the attention products (2 N M C per layer). Not
  counted: GELU, softmax, other matrix products, interpolation, RoIAlign. A two-stage detector
  runs its box head on 1000 proposals and its mask head on 100, as ``forward_dummy`` did. This
  gives the paper's GFLOPs (Tables 2, 10, 11; RetinaNet PVT-S 157.2 at 960x640, 285.9 at
  1280x800).
* ``'fvcore'``: fvcore's counting as mmengine ships it (no bias; 5 per element of an affine norm;
  every matrix product, interpolation counted) on the model's own ``_forward``, whose two-stage
  detectors keep the proposals their RPN predicts. timm publishes this count for its backbones.

``scaled_dot_product_attention`` has no handler in mmengine, so a fused attention call would
silently count as zero under either protocol: we add the handler.
"""
import inspect
from collections import Counter
from math import prod
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import conv_flop_jit, get_shape
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import nn

from mmpvt.models import build_backbone
from mmpvt.models.builder import build_from_config

PROTOCOLS = ('paper', 'fvcore')
# mmdet 2.x forward_dummy of a two-stage detector: 1000 proposals, masks for the first 100
PAPER_PROPOSALS = 1000


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> Counter:
    """Multiply-adds of softmax(q k^T) v: B*h*N*M*(d_qk + d_v) (the softmax itself not counted,
    as fvcore does for every elementwise op)."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    *batch, n, d = q
    m, dv = k[-2], v[-1]
    return Counter({'scaled_dot_product_attention': prod(batch) * n * m * (d + dv)})


def _conv_with_bias(inputs: List[Any], outputs: List[Any]) -> Counter:
    """fvcore's convolution count plus one addition per output element when there is a bias."""
    counts = conv_flop_jit(inputs, outputs)
    if get_shape(inputs[2]) is not None:
        counts['conv'] += prod(get_shape(outputs[0]))
    return counts


def _norm(affine_index: int):
    """mmcv's norm count: numel, twice that with an affine weight (input `affine_index`)."""

    def handle(inputs: List[Any], outputs: List[Any]) -> int:
        numel = prod(get_shape(inputs[0]))
        return numel * (2 if get_shape(inputs[affine_index]) is not None else 1)

    return handle


def _output_numel(inputs: List[Any], outputs: List[Any]) -> int:
    return prod(get_shape(outputs[0]))


def _input_numel(inputs: List[Any], outputs: List[Any]) -> int:
    return prod(get_shape(inputs[0]))


def _uncounted(inputs: List[Any], outputs: List[Any]) -> int:
    return 0  # replaces a default handle: set_op_handle(name, None) leaves the default in place


# products the paper's protocol leaves out (attention and resizing: it counts convolutions, norms
# and pooling as mmcv's counter does)
UNCOUNTED_OPS = ('aten::matmul', 'aten::mm', 'aten::bmm', 'aten::einsum',
                 'aten::upsample_nearest2d', 'aten::upsample_bilinear2d', 'aten::grid_sampler')
PAPER_HANDLES = {
    'aten::_convolution': _conv_with_bias,
    'aten::layer_norm': _norm(2),
    'aten::group_norm': _norm(2),
    'aten::batch_norm': _norm(1),
    'aten::relu': _output_numel,
    'aten::relu_': _output_numel,
    'aten::max_pool2d': _input_numel,
    'aten::avg_pool2d': _input_numel,
    'aten::adaptive_avg_pool2d': _input_numel,
    **{
        op: _uncounted
        for op in UNCOUNTED_OPS
    },
}


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f'protocol must be one of {PROTOCOLS}, got {protocol!r}')
    return protocol


def count_flops(model: nn.Module, inputs: Tuple[Any, ...],
                protocol: str = 'fvcore') -> FlopAnalyzer:
    """A FlopAnalyzer for ``model(*inputs)`` under `protocol` that also counts fused attention."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    if check_protocol(protocol) == 'paper':
        analyzer.set_op_handle(**PAPER_HANDLES)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer


def num_params(model: nn.Module, trainable_only: bool = False) -> int:
    """All parameters, or only those with requires_grad (what mmcv's counter, and so the
    authors' get_flops.py, reported: a ResNet's frozen stem and first stage are left out)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def backbone_complexity(arch: str = 'small', shape: Sequence[int] = (224, 224),
                        protocol: str = 'paper') -> dict:
    """Parameters and GFLOPs of a PVT or PVTv2 backbone alone at input size `shape` (H, W)."""
    model = build_backbone(arch).eval()
    with torch.no_grad():
        flops = count_flops(model, (torch.zeros(1, 3, *shape), ), protocol).total()
    return dict(model=f'{model.family}-{arch}', shape=tuple(shape), params=num_params(model),
                gflops=flops / 1e9, protocol=protocol)


class _TensorForward(nn.Module):
    """model(inputs, data_samples, mode='tensor') (the raw head outputs, mmdet's, mmseg's and
    mmpretrain's models alike) as a plain module the tracer can call."""

    def __init__(self, model: nn.Module, data_samples: Optional[list]) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, x: torch.Tensor):
        return self.model(x, self.data_samples, mode='tensor')


class _SampleReadingHeadForward(_TensorForward):
    """An mmseg segmentor whose decode head reads the batch's data samples (Mask2Former: the
    input's padded size), which mmseg's tensor mode does not pass: backbone and neck, then the
    decode head with the samples."""

    def forward(self, x: torch.Tensor):
        return self.model.decode_head.forward(self.model.extract_feat(x), self.data_samples)


def _head_reads_samples(model: nn.Module) -> bool:
    head = getattr(model, 'decode_head', None)
    return head is not None and 'batch_data_samples' in inspect.signature(head.forward).parameters


class _FixedProposalsForward(_TensorForward):
    """A two-stage detector as mmdet 2.x's ``forward_dummy`` ran it: backbone, neck, RPN head,
    then the RoI head on `PAPER_PROPOSALS` fixed boxes (its mask head on the first 100 of them,
    as ``StandardRoIHead.forward`` does). The box coordinates do not change the count."""

    def forward(self, x: torch.Tensor):
        feats = self.model.extract_feat(x)
        h, w = x.shape[-2:]
        boxes = torch.tensor([[0.0, 0.0, w / 2, h / 2]]).repeat(PAPER_PROPOSALS, 1)
        proposals = [InstanceData(bboxes=boxes)]
        return (self.model.rpn_head(feats),
                self.model.roi_head.forward(feats, proposals, self.data_samples))


def _uses_fixed_proposals(model: nn.Module) -> bool:
    """An RPN that predicts proposals from anchors and a RoI head (not Sparse R-CNN's learnt
    proposal boxes)."""
    rpn = getattr(model, 'rpn_head', None)
    return rpn is not None and hasattr(rpn, 'prior_generator') and hasattr(model, 'roi_head')


def config_complexity(config: str, shape: Optional[Sequence[int]] = None, protocol: str = 'paper',
                      cfg_options: Optional[dict] = None) -> Dict[str, Any]:
    """Parameters (all, trainable) and GFLOPs (whole model and backbone) of a config's model;
    ``module_flops``: the multiply-adds of every submodule, by name (``model.backbone``, ...).

    shape: (H, W) of the input; default 800x1333 for detection, 512x512 for segmentation,
    224x224 for classification (the paper's Table 2 counts the ImageNet classifiers there).
    cfg_options: config entries to override first (``--cfg-options``), e.g. a head variant.
    """
    check_protocol(protocol)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = build_from_config(cfg, pretrained=False).eval()  # no download for counting
    wrapper_type = _TensorForward
    if cfg.default_scope in ('mmseg', 'mmpretrain'):
        shape = tuple(shape or ((512, 512) if cfg.default_scope == 'mmseg' else (224, 224)))
        data_samples = None
        if _head_reads_samples(model):
            from mmseg.structures import SegDataSample  # mmseg only for such a head
            data_samples = [
                SegDataSample(
                    metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                  batch_input_shape=shape))
            ]
            wrapper_type = _SampleReadingHeadForward
    else:
        from mmdet.structures import DetDataSample  # mmdet only for a detection config
        shape = tuple(shape or (800, 1333))
        meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape,
                    scale_factor=(1.0, 1.0))
        data_samples = [DetDataSample(metainfo=meta)]
    if protocol == 'paper' and _uses_fixed_proposals(model):
        wrapper_type = _FixedProposalsForward
    wrapper = wrapper_type(model, data_samples)
    x = torch.zeros(1, 3, *shape)
    with torch.no_grad():
        total = count_flops(wrapper, (x, ), protocol)
        by_module = total.by_module()
    return dict(model=config, shape=shape, params=num_params(model),
                trainable_params=num_params(model, trainable_only=True),
                backbone_params=num_params(model.backbone), gflops=total.total() / 1e9,
                backbone_gflops=by_module['model.backbone'] / 1e9, protocol=protocol,
                module_flops=dict(by_module))
