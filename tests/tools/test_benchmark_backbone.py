"""tools/analysis/benchmark_backbone.py on tiny inputs: it runs, reports every field, compares
equal models."""
import json

import pytest
import torch

from mmpvt.families import convert_to_mmpvt
from mmpvt_tools.benchmarks.backbone import (IMPLEMENTATIONS, build_pair, max_feature_difference,
                                             run_benchmark)
from ..helpers import run_main

pytestmark = pytest.mark.slow  # whole models, training or subprocesses: not in test-fast

MODES = ('forward', 'forward+backward')
TIMING_FIELDS = {
    'median_s', 'min_s', 'max_s', 'repeats', 'images_per_s', 'achieved_gflops',
    'fraction_of_matmul_peak'
}


def test_compared_models_hold_identical_weights_and_agree():
    from mmdet.models.backbones.pvt import PyramidVisionTransformer
    models = build_pair('tiny')
    assert isinstance(models['mmdet'], PyramidVisionTransformer)
    theirs = convert_to_mmpvt(models['mmdet'].state_dict())[0]  # mmdet layout -> mmpvt
    for key, value in models['mmpvt'].state_dict().items():
        assert torch.equal(theirs[key], value), key
    assert max_feature_difference(models, (64, 96)) < 5e-4  # the LayerNorm eps difference


def test_pvt_v2_is_compared_with_mmdets_v2_port_holding_the_same_weights():
    from mmdet.models.backbones.pvt import PyramidVisionTransformerV2
    models = build_pair('b0')
    assert isinstance(models['mmdet'], PyramidVisionTransformerV2)
    theirs = convert_to_mmpvt(models['mmdet'].state_dict())[0]
    for key, value in models['mmpvt'].state_dict().items():
        assert torch.equal(theirs[key], value), key
    assert max_feature_difference(models, (64, 96)) < 5e-4  # the LayerNorm eps difference


def test_b2_li_has_no_mmdet_counterpart():
    with pytest.raises(ValueError, match="no mmdet counterpart for arch 'b2_li'"):
        build_pair('b2_li')


def test_report_has_every_field():
    # one setting: each memory measurement is a fresh worker process (~5 s each)
    report = run_benchmark(['tiny'], [(32, 48)], [2], warmup=0, repeats=2, log=lambda s: None)
    assert report['threads'] == torch.get_num_threads() and report['matmul_fp32_gflops'] > 0
    assert [(e['batch'], e['shape']) for e in report['results']] == [(2, [32, 48])]
    for entry in report['results']:
        for name in IMPLEMENTATIONS:
            for mode in MODES:
                assert set(entry[f'{name}/{mode}']) == TIMING_FIELDS
                assert entry[f'{name}/{mode}']['repeats'] == 2
            memory = entry[f'{name}/memory']
            assert memory['peak_bytes'] >= memory['rise_bytes'] > 0
        assert entry['speedup/forward'] > 0 and entry['memory_ratio'] > 0
        assert entry['max_abs_feature_diff'] < 5e-4 and entry['gflops_per_image'] > 0


def test_cli_writes_json_and_plot(tmp_path):
    # main(argv) in this process (helpers.run_main); tests/tools/test_benchmark_latency.py runs a
    # benchmark tool as a script
    out = run_main('analysis/benchmark_backbone.py', [
        '--arch', 'tiny', '--shapes', '32x32', '64x48', '--warmup', '0', '--repeats', '1',
        '--no-memory', '--json', tmp_path / 'b.json', '--plot', tmp_path / 'b.png'
    ]).stdout
    assert 'speedup' in out and 'tiny' in out
    report = json.loads((tmp_path / 'b.json').read_text())
    assert len(report['results']) == 2
    assert (tmp_path / 'b.png').stat().st_size > 1000
