"""tools/check_env.py --device: the preflight a user runs on a GPU node before a long job, run here
on the CPU (every check that means something on one), so that the tool cannot rot. Its
distributed-run check is the code of tests/engine/test_distributed_runs.py (two gloo processes),
left out here with --skip."""
import json

import pytest
import torch

import mmpvt.families.common as family_layers
import mmpvt.ops as ops
from mmpvt_tools.preflight import Preflight
from ..helpers import cpu_autocast_supports, run_main

pytestmark = pytest.mark.slow  # whole backbones, training steps

# the checks the preflight promises, in order (docs/install.md)
CHECKS = [
    'versions', 'mmcv.ops.nms', 'mmcv.ops.RoIAlign', 'mmcv.ops.sigmoid_focal_loss', 'fused-ops',
    'autocast-fp16', 'autocast-bf16', 'channels-last', 'sdpa', 'amp-train-step', 'with-cp',
    'torch.compile', 'distributed-run'
]
# what cannot run on a CPU, and why it may not here
SKIPPED_ON_CPU = {
    'mmcv.ops.sigmoid_focal_loss': 'mmcv has no CPU kernel of it',
    'distributed-run': 'left out (--skip)'
}
if not cpu_autocast_supports(torch.float16):
    SKIPPED_ON_CPU['autocast-fp16'] = 'needs a newer torch'
if not hasattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu'):
    SKIPPED_ON_CPU['sdpa'] = 'has no fused CPU attention kernel'


def only(*names):
    """The other checks, to --skip."""
    return [name for name in CHECKS if name not in names]


@pytest.fixture(scope='module')
def cpu_preflight(tmp_path_factory):
    report = tmp_path_factory.mktemp('preflight') / 'report.json'
    result = run_main('check_env.py', [
        '--device', 'cpu', '--size', '64', '96', '--skip', 'distributed-run', '--report',
        str(report)
    ], check=False)
    return result, json.loads(report.read_text())


def test_check_env_device_cpu_passes_every_check_a_cpu_can_run(cpu_preflight):
    result, _ = cpu_preflight
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [
        line for line in result.stdout.splitlines()
        if line.startswith(('check_env: PASS', 'check_env: FAIL', 'check_env: SKIP'))
    ]
    assert [line.split()[2].rstrip(':') for line in lines] == CHECKS
    for name, line in zip(CHECKS, lines):
        if name in SKIPPED_ON_CPU:
            assert line.startswith(f'check_env: SKIP {name}: ') and SKIPPED_ON_CPU[name] in line
        else:
            assert line.startswith(f'check_env: PASS {name}: '), line


def test_the_report_holds_every_check_and_the_machine(cpu_preflight):
    result, report = cpu_preflight
    assert report['passed'] is True
    assert report['environment']['device'] == 'cpu'
    assert report['environment']['torch'] == torch.__version__
    assert [c['name'] for c in report['checks']] == CHECKS
    assert all(c['status'] in ('PASS', 'SKIP') and c['detail'] for c in report['checks'])
    step = next(c for c in report['checks'] if c['name'] == 'amp-train-step')
    assert set(step['data']['steps']) == {'small', 'b2'}
    assert all(m['peak_mib'] > 0 for m in step['data']['steps'].values())


def test_device_cuda_without_cuda_says_so_in_one_line_and_exits_2(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    result = run_main(
        'check_env.py',
        ['--device', 'cuda', '--work-dir', str(tmp_path)], check=False)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        line for line in result.stdout.splitlines() if 'sees no CUDA device' in line
    ]
    assert len(result.stdout.splitlines()) == 1 and not list(tmp_path.iterdir())


def test_an_unknown_check_name_is_one_line():
    result = run_main('check_env.py', ['--device', 'cpu', '--skip', 'nsm'], check=False)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        "check_env: --skip: no check named ['nsm']; the checks are " + repr(CHECKS)
    ]


def test_a_fused_kernel_that_computes_otherwise_fails_the_fused_ops_check(monkeypatch, tmp_path):
    plain = ops.plain_conv_gelu_linear
    monkeypatch.setattr(ops, 'fused_conv_gelu_linear',
                        lambda h, hw, conv, fc2: plain(h, hw, conv, fc2) * 1.001)
    (result, ) = (
        r for r in Preflight('cpu', str(tmp_path), skip=only('fused-ops')).run()
        if r.name == 'fused-ops')
    assert result.status == 'FAIL' and 'fused and plain ops differ' in result.detail


@pytest.mark.skipif('sdpa' in SKIPPED_ON_CPU, reason=SKIPPED_ON_CPU.get('sdpa', ''))
def test_attention_on_the_math_path_fails_the_sdpa_check(monkeypatch, tmp_path):

    def math_attention(q, k, v, *args, **kwargs):  # softmax(q k^T / sqrt(d)) v, unfused
        return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1]**-0.5, dim=-1) @ v

    monkeypatch.setattr(family_layers.F, 'scaled_dot_product_attention', math_attention)
    (result, ) = (
        r for r in Preflight('cpu', str(tmp_path), size=(64, 64), skip=only('sdpa')).run()
        if r.name == 'sdpa')
    assert result.status == 'FAIL'
    # PVT-S: 3 + 4 + 6 + 3 attention layers
    assert result.detail.startswith('small: 0 of 16 attention layers ran a fused SDPA kernel')
