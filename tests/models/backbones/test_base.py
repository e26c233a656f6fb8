"""Specification of what PVT v1 and PVTv2 share as backbones (mmpvt.families.common and
build_backbone): output shapes, stage selection, the state-dict layout, training features, the
LayerNorm eps, argument and input checks.

Each behaviour is written once and runs on both families: ids say which ('PVT-tiny', 'PVTv2-b0').
The smallest variants stand for their family unless a test names others.
"""
import math
import re

import pytest
import torch
import torch.nn.functional as F

from mmpvt.families import convert_to_mmpvt
from mmpvt.families.common import PVTBlock
from mmpvt.models import PVT, PVTv2, build_backbone
from ...helpers import (CLASSIFIER_ONLY, V1_ARCHS, V2_ARCHS, backbone_with_official_weights,
                        by_family, family, max_abs_diff, meta_backbone, needs_cpu_fp16_autocast,
                        official_key_table, parameter_count, shapes, size_id)

FAMILY_CLASS = {'PVT': PVT, 'PVTv2': PVTv2}
STRIDES = (4, 8, 16, 32)
# Stage widths: Table 1 of the PVT paper (every v1 variant) and PVTv2-B0
# (tests/data/pvt_v2_facts.md).
CHANNELS = {'tiny': (64, 128, 320, 512), 'b0': (32, 64, 160, 256)}


@pytest.fixture(params=by_family('tiny', 'b0'))
def arch(request):
    return request.param


@pytest.fixture(scope='module')
def eval_models():
    """One eval-mode model per smallest variant (stochastic depth off), for tests that only run
    it; read-only."""
    return {a: build_backbone(a, drop_path_rate=0.0).eval() for a in CHANNELS}


# ---- construction ------------------------------------------------------------------------------
@pytest.mark.parametrize('name', by_family(*V1_ARCHS, *V2_ARCHS))
def test_build_backbone_builds_the_family_of_the_variant_name(name):
    model = meta_backbone(name)  # (built by build_backbone)
    assert type(model) is FAMILY_CLASS[family(name)]
    assert model.arch_name == name and model.family == family(name)


# The class token's row of v1's stage-4 position table (50 -> 49 positions of 512 values) is no
# backbone parameter; PVTv2 has no position table.
CLASS_TOKEN_ROW = {'PVT': 512, 'PVTv2': 0}


@pytest.mark.parametrize('name', by_family(*V1_ARCHS, *V2_ARCHS))
def test_parameter_count_is_the_official_checkpoints_without_the_classifier(
        official_keys, official_v2_keys, name):
    table = (official_keys if family(name) == 'PVT' else official_v2_keys)[name]
    official = sum(math.prod(s) for k, s in table if not CLASSIFIER_ONLY[family(name)].match(k))
    assert parameter_count(meta_backbone(name)) == official - CLASS_TOKEN_ROW[family(name)]


@pytest.mark.parametrize('name', by_family(*V1_ARCHS, *V2_ARCHS))
def test_state_dict_is_the_official_checkpoint_renamed(name):
    """Same tensors, same shapes: the release (classifier-only entries and v1's class-token row
    dropped by the conversion) renamed to mmpvt's keys."""
    release = {k: torch.empty(s, device='meta') for k, s in official_key_table(name)}
    assert shapes(meta_backbone(name).state_dict()) == shapes(convert_to_mmpvt(release).state_dict)


# ---- shapes ------------------------------------------------------------------------------------
@pytest.mark.parametrize('hw', [(224, 224), (256, 320), (33, 47), (97, 61), (1, 1),
                                pytest.param((800, 1333), marks=pytest.mark.slow)], ids=size_id)
def test_output_shapes_are_ceil_of_input_over_stride(eval_models, arch, hw):
    with torch.no_grad():
        outs = eval_models[arch](torch.randn(1, 3, *hw))
    assert [tuple(o.shape) for o in outs] == [(1, c, math.ceil(hw[0] / s), math.ceil(hw[1] / s))
                                              for c, s in zip(CHANNELS[arch], STRIDES)]


@pytest.mark.parametrize(
    'out_indices,stages',
    [
        ((0, ), [0]),
        ((3, ), [3]),
        ((1, 2), [1, 2]),
        ((0, 1, 2, 3), [0, 1, 2, 3]),
        ((2, 1), [2, 1]),  # in the order asked
        (3, [3]),  # an int selects one stage
    ])
def test_out_indices_select_stages(arch, out_indices, stages):
    model = build_backbone(arch, out_indices=out_indices).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 96))
    assert [o.shape[1] for o in outs] == [CHANNELS[arch][i] for i in stages]
    assert [o.shape[-1] for o in outs] == [96 // STRIDES[i] for i in stages]


def test_border_pixels_of_undivisible_input_reach_every_stage(eval_models, arch):
    x = torch.randn(1, 3, 37, 45, requires_grad=True)
    for out in eval_models[arch](x):  # the bottom-right input pixel influences each stage's last
        # position (a square, not a plain channel sum: that is constant after a unit LayerNorm)
        (grad, ) = torch.autograd.grad(out[0, :, -1, -1].square().sum(), x, retain_graph=True)
        assert grad[0, :, -1, -1].abs().sum() > 0


# ---- LayerNorm eps -----------------------------------------------------------------------------
def official_eps(name):
    """The eps the official checkpoints were trained with, by where the LayerNorm sits."""
    if re.fullmatch(r'stages\.\d+\.(patch_embed\.norm|blocks\.\d+\.attn\.norm)', name):
        return 1e-5  # nn.LayerNorm's default, in patch embedding and the K/V reduction
    if re.fullmatch(r'stages\.\d+\.(blocks\.\d+\.norm[12]|norm)', name):
        return 1e-6  # the layers' norms and PVTv2's stage norms
    raise AssertionError(f'unexpected LayerNorm {name}')


@pytest.mark.parametrize('name', by_family('tiny', 'b0', 'b2_li'))
def test_every_layer_norm_has_the_official_eps(name):
    norms = {
        n: m.eps
        for n, m in meta_backbone(name).named_modules() if isinstance(m, torch.nn.LayerNorm)
    }
    assert norms == {n: official_eps(n) for n in norms}
    assert 'stages.0.blocks.0.attn.norm' in norms and 'stages.0.patch_embed.norm' in norms


# ---- training features -------------------------------------------------------------------------
@pytest.mark.parametrize('name', by_family('tiny', 'b0', 'b2_li'))
def test_gradients_reach_every_parameter(name):
    model = build_backbone(name, drop_path_rate=0.0)
    model.init_weights()
    sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    without = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert without == []


def test_frozen_stages_have_no_gradient_and_stay_in_eval_mode(arch):
    model = build_backbone(arch, frozen_stages=2, drop_path_rate=0.1)
    model.train()
    for i, stage in enumerate(model.stages):
        frozen = i < 2
        assert all(p.requires_grad is not frozen for p in stage.parameters())
        assert all(m.training is not frozen for m in stage.modules())
    sum(o.mean() for o in model(torch.randn(1, 3, 64, 64))).backward()
    for i, stage in enumerate(model.stages):
        assert all((p.grad is None) is (i < 2) for p in stage.parameters()), i


@pytest.mark.parametrize('with_cp,calls_after_backward', [(False, 8), (True, 16)])
def test_activation_checkpointing_recomputes_each_layer_once_in_backward(
        arch, with_cp, calls_after_backward):
    model = build_backbone(arch, drop_path_rate=0.0, with_cp=with_cp)
    calls = []  # pre-hooks: a recomputation may stop before the layer's end
    for m in model.modules():
        if isinstance(m, PVTBlock):
            m.register_forward_pre_hook(lambda *args: calls.append(1))
    loss = sum(o.square().mean() for o in model(torch.randn(1, 3, 64, 64)))
    assert len(calls) == 8  # 2 + 2 + 2 + 2 layers
    loss.backward()
    assert len(calls) == calls_after_backward


def test_activation_checkpointing_keeps_outputs_and_gradients(arch):
    """The recomputation is the same computation: outputs within 1e-6, gradients within 1e-6
    absolute + 1e-5 relative (kernels may pick another summation order)."""
    plain = build_backbone(arch, drop_path_rate=0.0)
    plain.init_weights()
    ckpt = build_backbone(arch, drop_path_rate=0.0, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    outs_a, outs_b = plain(x), ckpt(x)
    sum(o.square().mean() for o in outs_a).backward()
    sum(o.square().mean() for o in outs_b).backward()
    assert max_abs_diff(outs_a, outs_b) < 1e-6
    for (name, pa), pb in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6, rtol=1e-5), name


LOW_PRECISION = [
    pytest.param(torch.bfloat16, id='bf16'),
    pytest.param(torch.float16, id='fp16', marks=[needs_cpu_fp16_autocast, pytest.mark.slow])
]


@pytest.mark.parametrize('dtype', LOW_PRECISION)
def test_autocast_forward_is_finite_and_close_to_fp32(arch, dtype):
    """Relative error of the features < 5e-2: bf16 keeps 8 mantissa bits (~1e-2 measured), fp16
    11."""
    model = build_backbone(arch).eval()
    model.init_weights()
    x = torch.randn(1, 3, 128, 160)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=dtype):
            low = model(x)
    for a, b in zip(low, ref):
        assert torch.isfinite(a).all()
        assert ((a.float() - b).norm() / b.norm()).item() < 5e-2


@pytest.mark.parametrize('dtype', LOW_PRECISION)
def test_autocast_gradients_agree_with_fp32_gradients(arch, dtype):
    """Low-precision gradients point the same way as fp32 ones: cosine > 0.99 over all weights."""
    model, _ = backbone_with_official_weights(arch)
    model.train()
    x = torch.randn(2, 3, 64, 64)

    def gradient(autocast):
        model.zero_grad()
        with torch.autocast('cpu', dtype=dtype, enabled=autocast):
            loss = sum(o.float().square().mean() for o in model(x))
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    ref, low = gradient(False), gradient(True)
    assert torch.isfinite(low).all()
    assert F.cosine_similarity(ref, low, dim=0).item() > 0.99


@pytest.mark.parametrize(
    'name,rate,expected',
    [
        # 3+4+6+3 = 16 layers: steps of 0.3 / 15 = 0.02
        pytest.param('small', 0.3, [0.02 * i for i in range(16)], id='PVT-small'),
        # 2+2+2+2 = 8 layers: steps of 0.1 / 7
        pytest.param('b0', 0.1, [i / 70 for i in range(8)], id='PVTv2-b0'),
    ])
def test_stochastic_depth_rises_linearly_to_drop_path_rate(name, rate, expected):
    with torch.device('meta'):
        model = build_backbone(name, drop_path_rate=rate)
    rates = [getattr(b.drop_path, 'drop_prob', 0.0) for s in model.stages for b in s.blocks]
    assert rates == pytest.approx(expected)


# ---- arguments and inputs ----------------------------------------------------------------------
# A valid one-stage arch dict of each family (v1 names its patch size, v2's is fixed).
ONE_STAGE = {
    'tiny':
    dict(embed_dims=[64], depths=[1], num_heads=[1], mlp_ratios=[4], sr_ratios=[1],
         patch_sizes=[4]),
    'b0':
    dict(embed_dims=[64], depths=[1], num_heads=[1], mlp_ratios=[4], sr_ratios=[1])
}


@pytest.mark.parametrize('variant,two_stages,shapes', [
    pytest.param(
        'tiny',
        dict(embed_dims=[32, 64], depths=[1, 2], num_heads=[1, 2], mlp_ratios=[2, 2],
             sr_ratios=[2, 1], patch_sizes=[4, 2]), [(1, 32, 8, 8), (1, 64, 4, 4)], id='PVT'),
    pytest.param(
        'b0',
        dict(embed_dims=[16, 32], depths=[1, 1], num_heads=[1, 2], mlp_ratios=[2, 2],
             sr_ratios=[2, 1], linear=True), [(1, 16, 8, 8), (1, 32, 4, 4)], id='PVTv2'),
])
def test_custom_arch_dict_builds_that_network(variant, two_stages, shapes):
    model = FAMILY_CLASS[family(variant)](two_stages, out_indices=(0, 1)).eval()
    outs = model(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == shapes


@pytest.mark.parametrize(
    'edit,message', [
        (lambda one: 'huge', "Unknown {family} arch 'huge'"),
        (lambda one: dict(embed_dims=[64]), 'Custom {family} arch needs the keys .*; missing '),
        (lambda one: dict(one, embed_dims=[64, 128]),
         '{family} arch: every entry needs one value per '
         'stage'),
        (lambda one: dict(one, embed_dims=[60], num_heads=[8]),
         '{family} arch: stage 0 embed_dims 60 is not divisible by num_heads 8'),
        (lambda one: dict(one, num_heads=[0]),
         r'{family} arch: num_heads must be positive integers'),
        (lambda one: dict(one, sr_ratios=[0]),
         r'{family} arch: sr_ratios must be positive integers'),
        (lambda one: dict(one, depths=[0]), r'{family} arch: depths must be positive integers'),
        (lambda one: dict(one, mlp_ratios=[0]),
         r'{family} arch: mlp_ratios must be positive numbers'),
    ], ids=[
        'unknown-name', 'missing-keys', 'lengths-differ', 'heads-do-not-divide', 'zero-heads',
        'zero-sr', 'zero-depth', 'zero-mlp-ratio'
    ])
def test_bad_arch_is_rejected_with_a_clear_error(arch, edit, message):
    with pytest.raises(ValueError, match=message.format(family=family(arch))):
        FAMILY_CLASS[family(arch)](edit(ONE_STAGE[arch]))


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(out_indices=(4, )), ValueError,
     r'out_indices must be distinct stage indices in \[0, 3\], got \(4,\)'),
    (dict(out_indices=(0, 0)), ValueError, 'out_indices must be distinct'),
    (dict(out_indices='0'), TypeError, 'out_indices must be an int or a sequence'),
    (dict(frozen_stages=5), ValueError, r'frozen_stages must be an integer in \[-1, 4\], got 5'),
    (dict(drop_path_rate=1.5), ValueError, r'drop_path_rate must be in \[0, 1\), got 1.5'),
    (dict(drop_path_rate=-0.5), ValueError, r'drop_path_rate must be in \[0, 1\), got -0.5'),
    (dict(in_channels=0), ValueError, 'in_channels must be a positive integer, got 0'),
    (dict(with_cp=1), TypeError, 'with_cp must be True or False, got 1'),
])
def test_bad_options_are_rejected_when_the_model_is_built(arch, kwargs, error, message):
    with pytest.raises(error, match=f'^{family(arch)}: {message}'):
        build_backbone(arch, **kwargs)


@pytest.mark.parametrize(
    'x,error,message', [
        (torch.zeros(3, 64, 64), ValueError, r'expects a \(B, 3, H, W\) tensor with H, W >= 1, got '
         r'shape \(3, 64, 64\)'),
        (torch.zeros(1, 1, 64, 64), ValueError, r'\(B, 3, H, W\)'),
        (torch.zeros(1, 4, 64, 64), ValueError, r'\(B, 3, H, W\)'),
        (torch.zeros(1, 3, 0, 8), ValueError, r'\(B, 3, H, W\)'),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), TypeError, 'floating-point'),
        (torch.zeros(1, 3, 32, 32, dtype=torch.float64), TypeError, 'torch.float64 differs'),
        ([torch.zeros(3, 32, 32)], TypeError, r'\(B, 3, H, W\) tensor, got list'),
    ], ids=['no-batch', '1-channel', '4-channels', 'empty', 'uint8', 'float64', 'list'])
def test_bad_input_gets_an_error_saying_what_is_expected(eval_models, arch, x, error, message):
    with pytest.raises(error, match=message):
        eval_models[arch](x)


# torch 2.14 warns (FutureWarning) on every torch.jit.script call; this one is on purpose
@pytest.mark.filterwarnings('ignore:`torch.jit.script` is deprecated:FutureWarning')
def test_torchscript_scripting_is_refused_in_one_sentence(arch):
    with pytest.raises(
            RuntimeError, match=r'^PVT(v2)? cannot be compiled with torch\.jit\.script'
            r' .*Use torch\.export\.export, torch\.compile or the '
            r'ONNX export'):
        torch.jit.script(build_backbone(arch))


def test_stages_after_the_last_returned_one_are_not_trained(arch, log_lines):
    # with mmengine's find_unused_parameters=False, DistributedDataParallel stops at the second
    # iteration on a trainable parameter that got no gradient: none may be left without one
    model = build_backbone(arch, out_indices=(0, 1, 2))
    model.train()
    sum(o.square().mean() for o in model(torch.randn(1, 3, 64, 64))).backward()
    trainable = {n: p.grad is not None for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(trainable.values()), [n for n, g in trainable.items() if not g]
    assert all(not p.requires_grad for p in model.stages[3].parameters())
    assert not model.stages[3].training and model.stages[2].training
    assert any('returns nothing of stages [3]' in line for line in log_lines)


@pytest.mark.parametrize('arch', by_family('tiny', 'b0'))
def test_the_openmmlab_backbone_is_initialised_by_init_weights_only(arch):
    # as mmengine's modules are (the Runner calls init_weights): built, it still holds PyTorch's
    # default initialisation (non-zero linear biases), which the authors' init sets to zero; the
    # plain encoder is initialised by its constructor
    from mmpvt.families import build_encoder
    model = build_backbone(arch)
    fc1 = model.stages[0].blocks[0].mlp.fc1
    assert fc1.bias.abs().max() > 0
    model.init_weights()
    assert fc1.bias.abs().max() == 0
    assert build_encoder(arch).stages[0].blocks[0].mlp.fc1.bias.abs().max() == 0


def test_the_authors_truncated_normal_draws_what_mmengines_draws():
    # the same seed gives the same initial weights as mmengine's (and timm's) trunc_normal_,
    # which the authors' initialisation calls
    from mmengine.model.weight_init import trunc_normal_ as mmengine_trunc_normal_

    from mmpvt.families.common import trunc_normal_
    torch.manual_seed(0)
    theirs = mmengine_trunc_normal_(torch.empty(512, 320), std=0.02)
    torch.manual_seed(0)
    assert torch.equal(trunc_normal_(torch.empty(512, 320), std=0.02), theirs)
