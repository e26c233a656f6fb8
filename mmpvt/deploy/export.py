"""ONNX export of PVT / PVTv2 backbones and of whole detectors and segmentors.

Both of torch's exporters work with symbolic input sizes (batch, H, W; sizes that the strides do
not divide included): the TorchScript one (``dynamo=False``, ``dynamic_axes``) and the dynamo one
(``dynamo=True``, ``dynamic_shapes`` with ``Dim.DYNAMIC``; named ``Dim`` objects trip a torch
bug, in 2.13 and 2.14, while it reports the derived size relations). What makes this possible is
:func:`mmpvt.ops.tracing_shapes`: while an exporter records the model, padding amounts,
position-table sizes and the b2-li pooling bins are computed from the input's size inside the
graph instead of being Python numbers of the example.

mmdeploy 1.3.1 (the last release) is not used: installing it downgrades onnx to 1.17 and
protobuf to 3.20, and its ``torch2onnx`` fails on torch 2.13 and later (it relies on the
TorchScript exporter, which torch no longer selects by default); see docs/deployment.md.
"""
import json
import os
import os.path as osp
import warnings
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from torch import Tensor, nn

from ..fileio import atomic_path
from ..models.builder import build_from_config
from ..models.checkpoints import fit_state_dict, load_checkpoint_file
from ..torch_compat import (DYNAMIC_EXPORT_TORCH, has_dynamic_export, legacy_onnx_export_kwargs,
                            require)
from .graphs import DenseDetectorGraph  # noqa: F401  (a public name of this module)
from .specs import IMAGE, ExportSpec, Graph, plan_export, symbolic_axes

BACKBONE_OUTPUTS = ('c2', 'c3', 'c4', 'c5')


def export_program(model: nn.Module, example: Tuple[Tensor, ...],
                   dynamic_axes: Sequence[Sequence[int]]) -> 'torch.export.ExportedProgram':
    """torch.export of `model` in eval mode; dynamic_axes: per input, the axes left symbolic
    (``Dim.DYNAMIC``). Needs torch >= 2.6."""
    require(has_dynamic_export(), 'torch.export with dynamic sizes', DYNAMIC_EXPORT_TORCH)
    dim = torch.export.Dim.DYNAMIC
    shapes = tuple({axis: dim for axis in axes} for axes in dynamic_axes)
    model.eval()
    with torch.no_grad():
        return torch.export.export(model, tuple(example), dynamic_shapes=shapes)


def export_onnx(model: nn.Module, example: Tuple[Tensor, ...], path: str,
                input_names: Sequence[str], output_names: Sequence[str], dynamic_dims: dict,
                opset: int = 17, dynamo: bool = False) -> str:
    """Export `model` (called on `example`) to ONNX at `path`, atomically.

    dynamic_dims: {input name: {axis: name}}; those axes are symbolic in the graph (all other
    sizes are fixed). dynamo: torch.export + torch's dynamo exporter (opset >= 18) instead of the
    TorchScript exporter; `model` may then also be an ``ExportedProgram``. Returns `path`.
    """
    if opset < 17:
        raise ValueError(f'opset must be >= 17 (LayerNormalization), got {opset}')
    if dynamo and opset < 18:
        raise ValueError(f'the dynamo exporter writes opset >= 18, got {opset}')
    if dynamo:
        require(has_dynamic_export(), 'the dynamo ONNX exporter', DYNAMIC_EXPORT_TORCH)
    with torch.no_grad(), atomic_path(path) as tmp:
        if dynamo:
            program = model if isinstance(model, torch.export.ExportedProgram) else \
                export_program(model, example, [sorted(dynamic_dims.get(name, {}))
                                                for name in input_names])
            onnx_program = torch.onnx.export(program, example, dynamo=True,
                                             input_names=list(input_names),
                                             output_names=list(output_names), opset_version=opset)
            onnx_program.save(tmp)
        else:
            model.eval()
            with warnings.catch_warnings():
                # torch (2.13+) warns that this exporter is legacy; it is the one whose symbolic
                # functions give two-stage detectors their RoiAlign node (docs/deployment.md)
                warnings.filterwarnings('ignore', 'You are using the legacy TorchScript-based',
                                        DeprecationWarning)
                torch.onnx.export(model, example, tmp, opset_version=opset,
                                  input_names=list(input_names), output_names=list(output_names),
                                  dynamic_axes=dynamic_dims, **legacy_onnx_export_kwargs())
    return path


def export_backbone(model: nn.Module, path: str, shape: Sequence[int] = (2, 3, 224, 320),
                    opset: int = 17, dynamic: bool = True, dynamo: bool = False,
                    program: 'torch.export.ExportedProgram' = None) -> str:
    """A PVT / PVTv2 backbone to ONNX: input ``input`` (B, 3, H, W), outputs ``c2..c5`` (one
    per ``out_indices`` entry). With `dynamic`, B, H and W are symbolic. With `dynamo`, an
    already exported `program` of `model` may be given. The example input is made on the
    model's device in its dtype (a CUDA or float64 model exports as it is)."""
    names = BACKBONE_OUTPUTS[:len(model.out_indices)]
    dims = symbolic_axes(input=IMAGE) if dynamic else {}
    if not dynamic and dynamo:
        raise ValueError('the dynamo export here is always dynamic; use dynamo=False for a '
                         'fixed-size graph')
    weight = next(model.parameters())
    example = torch.randn(*shape, device=weight.device, dtype=weight.dtype)
    return export_onnx(program if program is not None else model, (example, ), osp.abspath(path),
                       ['input'], names, dims, opset, dynamo)


# ---- whole models: one spec per task (mmpvt.deploy.specs) -------------------------------------
def export_model(config: str, checkpoint: str, out: str, shape: Optional[Sequence[int]] = None,
                 dynamic: bool = True, opset: int = 17, dynamo: bool = False) -> dict:
    """A detector (RetinaNet, ATSS, GFL, Faster/Mask/Cascade R-CNN, DETR), segmentor
    (EncoderDecoder) or classifier (ImageClassifier) of `config` with `checkpoint` to ONNX at
    `out` (two-stage detectors: plus companion graphs next to it); returns the metadata written
    into the file. `shape`: the example input's (H, W), default 224x224 for a classifier, else
    800x1344 (with `dynamic` any size runs).

    What cannot be exported is refused before the checkpoint is read; the checkpoint is read
    once, for the weights and the dataset's classes and palette."""
    cfg = Config.fromfile(config)
    try:
        model = build_from_config(cfg, pretrained=False)
    except ValueError as e:
        raise ValueError(f'{config}: {e}') from e
    build_spec = plan_export(model, cfg.default_scope, config, dynamo)
    _load_weights(model, cfg, checkpoint)
    model.eval()
    shape = shape or ((224, 224) if cfg.default_scope == 'mmpretrain' else (800, 1344))
    spec = build_spec(cfg, model, torch.randn(1, 3, *shape))
    _write(spec, out, dynamic, opset, dynamo)
    return spec.meta


def _load_weights(model: nn.Module, cfg, checkpoint: str) -> None:
    """Load `checkpoint` into `model` strictly (a key of the model the file lacks or a shape
    that differs is an error naming them: an export of a partly random model is worse than
    none) and set ``model.dataset_meta`` from it (else from the config). The file is read once."""
    ckpt = load_checkpoint_file(checkpoint)  # errors name the file and say what is wrong
    fit_state_dict(model, ckpt, str(checkpoint), strict=True)
    # mmengine's load_checkpoint minus its read; the state dict fits, so nothing is skipped
    _load_checkpoint_to_model(model, ckpt, strict=False)
    dataset_meta = (ckpt.get('meta') or {}).get('dataset_meta')
    if dataset_meta:
        model.dataset_meta = dataset_meta
    elif cfg.get('metainfo'):
        model.dataset_meta = dict(cfg.metainfo)


def _export_graph(graph: Graph, path: str, dynamic: bool, opset: int, dynamo: bool) -> None:
    export_onnx(graph.module, graph.example, path, graph.inputs, graph.outputs, graph.axes(dynamic),
                opset, dynamo)


def _write(spec: ExportSpec, out: str, dynamic: bool, opset: int, dynamo: bool) -> None:
    """`spec`'s companions as ``<stem>.<key>.onnx``, then its graph at `out` with the metadata
    (naming the companions). The companions are written first and removed again if anything
    fails, so `out` never names missing files."""
    stem = out[:-len('.onnx')] if out.endswith('.onnx') else out
    written = []
    try:
        for key, graph in spec.companions.items():
            path = f'{stem}.{key}.onnx'
            _export_graph(graph, path, dynamic, opset, dynamo)
            written.append(path)
        if spec.companions:
            spec.meta['graphs'] = {
                key: osp.basename(f'{stem}.{key}.onnx')
                for key in spec.companions
            }
        _export_graph(spec.graph, out, dynamic, opset, dynamo)
        _store_meta(out, spec.meta)
    except BaseException:
        for path in written:
            os.remove(path)
        raise


def _store_meta(path: str, meta: dict) -> None:
    import onnx
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = 'mmpvt', json.dumps(meta)
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)
