"""ONNX export of PVT / PVTv2 backbones and of whole detectors and segmentors.

Both of torch's exporters work with symbolic input sizes (batch, H, W; sizes that the strides do
not divide included): the TorchScript one (``dynamo=False``, ``dynamic_axes``) and the dynamo one
(``dynamo=True``, ``dynamic_shapes`` with ``Dim.DYNAMIC``; named ``Dim`` objects trip a torch
2.13 bug while it reports the derived size relations). What makes this possible is
:func:`mmpvt.models.layers.tracing_shapes`: while an exporter records the model, padding amounts,
position-table sizes and the b2-li pooling bins are computed from the input's size inside the
graph instead of being Python numbers of the example.

mmdeploy 1.3.1 (the last release) is not used: installing it downgrades onnx to 1.17 and
protobuf to 3.20, and its ``torch2onnx`` fails on torch 2.13 (it relies on the TorchScript
exporter, which torch 2.13 no longer selects by default); see the README's deployment section.
"""
import os.path as osp
from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

from ..fileio import atomic_path

BACKBONE_OUTPUTS = ('c2', 'c3', 'c4', 'c5')


def export_program(model: nn.Module, example: Tuple[Tensor, ...],
                   dynamic_axes: Sequence[Sequence[int]]) -> 'torch.export.ExportedProgram':
    """torch.export of `model` in eval mode; dynamic_axes: per input, the axes left symbolic
    (``Dim.DYNAMIC``)."""
    dim = torch.export.Dim.DYNAMIC
    shapes = tuple({axis: dim for axis in axes} for axes in dynamic_axes)
    model.eval()
    with torch.no_grad():
        return torch.export.export(model, tuple(example), dynamic_shapes=shapes)


def export_onnx(model: nn.Module, example: Tuple[Tensor, ...], path: str,
                input_names: Sequence[str], output_names: Sequence[str],
                dynamic_dims: dict, opset: int = 17, dynamo: bool = False) -> str:
    """Export `model` (called on `example`) to ONNX at `path`, atomically.

    dynamic_dims: {input name: {axis: name}}; those axes are symbolic in the graph (all other
    sizes are fixed). dynamo: torch.export + torch's dynamo exporter (opset >= 18) instead of the
    TorchScript exporter; `model` may then also be an ``ExportedProgram``. Returns `path`.
    """
    if opset < 17:
        raise ValueError(f'opset must be >= 17 (LayerNormalization), got {opset}')
    if dynamo and opset < 18:
        raise ValueError(f'the dynamo exporter writes opset >= 18, got {opset}')
    with torch.no_grad(), atomic_path(path) as tmp:
        if dynamo:
            program = model if isinstance(model, torch.export.ExportedProgram) else \
                export_program(model, example, [sorted(dynamic_dims.get(name, {}))
                                                for name in input_names])
            onnx_program = torch.onnx.export(program, example, dynamo=True,
                                             input_names=list(input_names),
                                             output_names=list(output_names),
                                             opset_version=opset)
            onnx_program.save(tmp)
        else:
            model.eval()
            torch.onnx.export(model, example, tmp, dynamo=False, opset_version=opset,
                              input_names=list(input_names), output_names=list(output_names),
                              dynamic_axes=dynamic_dims)
    return path


def export_backbone(model: nn.Module, path: str, shape: Sequence[int] = (2, 3, 224, 320),
                    opset: int = 17, dynamic: bool = True, dynamo: bool = False,
                    program: 'torch.export.ExportedProgram' = None) -> str:
    """A PVT / PVTv2 backbone to ONNX: input ``input`` (B, 3, H, W), outputs ``c2..c5`` (one
    per ``out_indices`` entry). With `dynamic`, B, H and W are symbolic. With `dynamo`, an
    already exported `program` of `model` may be given."""
    names = BACKBONE_OUTPUTS[:len(model.out_indices)]
    dims = {'input': {0: 'batch', 2: 'height', 3: 'width'}} if dynamic else {}
    if not dynamic and dynamo:
        raise ValueError('the dynamo export here is always dynamic; use dynamo=False for a '
                         'fixed-size graph')
    return export_onnx(program if program is not None else model, (torch.randn(*shape),),
                       osp.abspath(path), ['input'], names, dims, opset, dynamo)
