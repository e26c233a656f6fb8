"""Export with symbolic sizes: torch.export, both ONNX exporters (checked in onnxruntime at sizes
other than the export size) and torch.compile without graph breaks, for PVT and PVTv2."""
import functools

import pytest
import torch

from mmpvt.deploy.export import export_backbone, export_program
from mmpvt.families import family_of
from mmpvt.models import build_backbone
from mmpvt.registry import MODELS
from mmpvt.torch_compat import TorchTooOldError
from ..helpers import needs_dynamic_export

pytestmark = pytest.mark.slow  # exports and compiles whole backbones

EXPORT_SHAPE = (2, 3, 224, 320)
# Sizes other than the export size; 97x131: 32 (and every stride) divides neither side.
OTHER_SHAPES = [(1, 3, 256, 352), (2, 3, 97, 131), (1, 3, 160, 480)]
TOLERANCE = 1e-4  # fp32, max abs error over the four maps (the target)


@functools.lru_cache(maxsize=None)
def backbone(arch):
    """Variant `arch` (its widths, heads, reductions and, for b2_li, linear SRA) with one block
    per stage, initialised as for training, in eval mode: export meets every kind of layer in
    every stage, and the variant's depth would only repeat them (the exports take a fraction of
    the time)."""
    torch.manual_seed(0)
    family = family_of(arch)
    model = MODELS.get(family.name)(dict(family.archs[arch], depths=[1, 1, 1, 1]))
    model.init_weights()
    return model.eval()


@functools.lru_cache(maxsize=None)
def program(arch):
    return export_program(backbone(arch), (torch.randn(*EXPORT_SHAPE), ), [(0, 2, 3)])


def max_error(outputs, expected):
    return max((torch.as_tensor(a) - b).abs().max().item() for a, b in zip(outputs, expected))


# The dynamo exporter takes ~15 s per model here: it runs for PVT-T (reusing the torch.export
# program of the test below); the TorchScript exporter for all three.
@pytest.mark.parametrize('arch,dynamo', [('tiny', False), ('b0', False), ('b2_li', False),
                                         pytest.param('tiny', True, marks=needs_dynamic_export)])
def test_onnx_export_matches_eager_at_other_sizes(arch, dynamo, tmp_path):
    import onnxruntime as ort
    model = backbone(arch)
    path = export_backbone(model, tmp_path / f'{arch}.onnx', shape=EXPORT_SHAPE,
                           opset=18 if dynamo else 17, dynamo=dynamo,
                           program=program(arch) if dynamo else None)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == ['c2', 'c3', 'c4', 'c5']
    for shape in OTHER_SHAPES:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = model(x)
        outputs = session.run(None, {'input': x.numpy()})
        assert [o.shape for o in outputs] == [tuple(e.shape) for e in expected]
        assert max_error(outputs, expected) <= TOLERANCE, shape


def test_b2_li_graph_supports_small_inputs_down_to_33_pixels(tmp_path):
    # b2-li pools every stage to 7x7 from bins computed inside the graph; torch.export's range
    # constraint for PVTv2 is H, W >= 33 (stage 4 at least 2x2 tokens), tested at the bound.
    import onnxruntime as ort
    model = backbone('b2_li')
    path = export_backbone(model, tmp_path / 'b2_li.onnx', shape=EXPORT_SHAPE)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    for shape in [(1, 3, 33, 47), (1, 3, 40, 33)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            assert max_error(session.run(None, {'input': x.numpy()}), model(x)) <= TOLERANCE


@needs_dynamic_export
@pytest.mark.parametrize('arch', ['tiny', 'b2_li'])
def test_torch_export_with_dynamic_batch_height_width(arch):
    model, exported = backbone(arch), program(arch)
    name = exported.graph_signature.user_inputs[0]
    shape = next(n for n in exported.graph.nodes if n.name == name).meta['val'].shape
    assert [isinstance(s, int) for s in shape] == [False, True, False, False]  # B, H, W symbolic
    with torch.no_grad():
        for other in OTHER_SHAPES:
            x = torch.randn(*other)
            assert max_error(exported.module()(x), model(x)) <= 1e-5


@pytest.mark.parametrize('arch', ['tiny', 'b0'])
@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_torch_compile_sees_one_graph_without_breaks(arch, mode):
    model = build_backbone(arch)
    getattr(model, mode)()
    x = torch.randn(2, 3, 96, 128)
    torch._dynamo.reset()
    if mode == 'train':
        explanation = torch._dynamo.explain(lambda t: sum(o.sum() for o in model(t)))(x)
    else:
        with torch.no_grad():
            explanation = torch._dynamo.explain(model)(x)
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), \
        explanation.break_reasons


@pytest.mark.parametrize('export', [
    lambda tmp: export_program(backbone('tiny'), (torch.randn(1, 3, 64, 64), ), [(0, 2, 3)]),
    lambda tmp: export_backbone(backbone('tiny'), tmp / 'x.onnx', opset=18, dynamo=True)
], ids=['torch.export', 'dynamo ONNX exporter'])
def test_dynamic_export_on_an_older_torch_is_refused_naming_the_torch_it_needs(
        export, tmp_path, monkeypatch):
    import mmpvt.deploy.export as export_module
    monkeypatch.setattr(export_module, 'has_dynamic_export', lambda: False)  # as on torch 2.1
    with pytest.raises(TorchTooOldError, match=r'needs torch >= 2\.6; this is torch '):
        export(tmp_path)
    assert not (tmp_path / 'x.onnx').exists()


def test_eager_outputs_are_unchanged_by_the_export_paths(monkeypatch):
    # the export path (computed padding, always-resized table, matrix pooling) and the eager
    # shortcuts agree: run the eager model with the tracing switch (mmpvt.ops.tracing_shapes,
    # the one every layer asks) forced on
    import mmpvt.ops.shapes as shapes
    for arch in ('tiny', 'b2_li'):
        model, x = backbone(arch), torch.randn(1, 3, 97, 131)
        with torch.no_grad():
            eager = model(x)
            with monkeypatch.context() as patch:
                patch.setattr(shapes, 'is_exporting', lambda: True)
                assert shapes.tracing_shapes()
                forced = model(x)
        assert max_error(forced, eager) <= 1e-5


def test_a_float64_backbone_exports_in_its_own_dtype(tmp_path):
    # the example input follows the model's dtype (and device): float64 weights, float64 graph
    import onnx
    model = build_backbone('b0').double().eval()
    path = export_backbone(model, tmp_path / 'b0_fp64.onnx', shape=(1, 3, 64, 64))
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert next(model.parameters()).dtype == torch.float64  # the model is left as it was
