"""The plain path is one switch away: ``mmpvt.ops.use_fused_ops(False)`` (or MMPVT_FUSED_OPS=0)
makes every layer compute with plain PyTorch ops, and both paths give the same outputs and
gradients (float64: tolerance 1e-12)."""
import importlib

import pytest
import torch

from mmpvt import ops
from mmpvt.families import FAMILIES, build_encoder
from mmpvt.ops import feed_forward
from mmpvt.torch_compat import torch_version

# Two small stages of each kind of layer: v1, v2 and v2 with linear SRA (its ReLU).
SMALL = dict(
    embed_dims=(16, 32), depths=(1, 2), num_heads=(1, 2), mlp_ratios=(4, 2), sr_ratios=(2, 1))


@pytest.mark.parametrize('family,arch', [('PVT', dict(SMALL, patch_sizes=(4, 2))), ('PVTv2', SMALL),
                                         ('PVTv2', dict(SMALL, linear=True))],
                         ids=['PVT', 'PVTv2', 'PVTv2-linear'])
def test_fused_and_plain_paths_give_the_same_outputs_and_gradients(family, arch):
    torch.manual_seed(0)
    model = FAMILIES[family].encoder(arch, out_indices=(0, 1), drop_path_rate=0.0).double()
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    results = []
    for fused in (True, False):
        with ops.use_fused_ops(fused):
            model.zero_grad()
            outs = model(x)
            sum((o * o).sum() for o in outs).backward()
            results.append(
                ([o.detach() for o in outs], [p.grad.clone() for p in model.parameters()]))
    (fused_out, fused_grad), (plain_out, plain_grad) = results
    for a, b in zip(fused_out + fused_grad, plain_out + plain_grad):
        assert (a - b).abs().max() <= 1e-12


def test_the_switch_takes_the_plain_ops_and_restores_the_previous_setting(monkeypatch):
    calls = []
    monkeypatch.setattr(feed_forward.ConvGELULinear, 'apply',
                        lambda *args: calls.append(args) or None)
    model = build_encoder('b0', drop_path_rate=0.0)
    assert ops.fused_ops_enabled()
    with ops.use_fused_ops(False):
        assert not ops.fused_ops_enabled()
        model(torch.randn(1, 3, 32, 32)).__len__()
    assert calls == [] and ops.fused_ops_enabled()


@pytest.mark.parametrize('value,fused', [('0', False), ('1', True), (None, True)])
def test_the_environment_variable_switches_the_default_off(monkeypatch, value, fused):
    # mmpvt.ops reads MMPVT_FUSED_OPS when it is imported: it is imported again with the variable
    # so (in place: its functions, held by the layers, read the module's own globals), and
    # again once the environment is as it was
    if value is None:
        monkeypatch.delenv('MMPVT_FUSED_OPS', raising=False)
    else:
        monkeypatch.setenv('MMPVT_FUSED_OPS', value)
    try:
        assert importlib.reload(ops).fused_ops_enabled() is fused
    finally:
        monkeypatch.undo()
        importlib.reload(ops)


# torch 2.1's CPU backward of PVTv2-B2-Li under bf16 autocast corrupts the heap ("double free or
# corruption", then abort) with two threads, with mmpvt's fused ops switched off too
# (MMPVT_FUSED_OPS=0): torch's, not ours; one thread, and torch 2.14, run it.
TORCH_2_1_BF16_ABORT = pytest.mark.skipif(
    torch_version() < (2, 2),
    reason='torch 2.1 aborts in its own CPU bf16 backward of b2_li (heap corruption)')


@pytest.mark.parametrize(
    'arch', ['tiny', 'b0',
             pytest.param('b2_li', marks=[pytest.mark.slow, TORCH_2_1_BF16_ABORT])])
def test_a_bf16_autocast_training_step_runs_every_feed_forward_fused_in_bf16(arch, monkeypatch):
    # (the nearest CPU stand-in for AMP on a GPU; that its gradients agree with fp32's is
    # test_autocast_gradients_agree_with_fp32_gradients in tests/models/backbones/test_base.py)
    dtypes, fused = [], feed_forward.ConvGELULinear.apply
    monkeypatch.setattr(feed_forward.ConvGELULinear, 'apply',
                        lambda h, *args: dtypes.append(h.dtype) or fused(h, *args))
    model = build_encoder(arch, drop_path_rate=0.0).train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = sum(o.float().square().mean() for o in model(torch.randn(1, 3, 64, 64)))
    loss.backward()
    assert dtypes == [torch.bfloat16] * sum(len(s.blocks) for s in model.stages)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
