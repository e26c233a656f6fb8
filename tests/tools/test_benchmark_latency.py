"""Specification of the whole-model latency measurement (mmpvt_tools.benchmarks.latency) and
of ``tools/analysis/benchmark_latency.py``: batch 1, the config's test pipeline applied outside
the timed region, the warm-up images untimed, then exactly N images timed; images from the
config's test data where present, else synthetic shapes; detection and segmentation configs."""
import json
import os

import pytest
from mmengine.model import BaseModel

from mmpvt_tools.benchmarks.latency import measure_latency
from ..helpers import REPO, run_command, run_main

DET = os.path.join(REPO, 'configs', 'demo', 'retinanet_pvt_t.py')
SEG = os.path.join(REPO, 'configs', 'demo', 'sem_fpn_pvt_t.py')
REPORT_KEYS = {
    'config', 'checkpoint', 'device', 'amp', 'batch', 'warmup', 'images', 'source', 'ms_per_image',
    'images_per_s', 'median_ms', 'times_ms', 'threads', 'torch', 'cpu'
}


@pytest.fixture
def test_step_calls(monkeypatch):
    """How often a model's test_step ran (the timed call), counted from outside the module."""
    calls = []
    original = BaseModel.test_step

    def counted(self, data):
        calls.append(len(data['inputs']))  # images in this call
        return original(self, data)

    monkeypatch.setattr(BaseModel, 'test_step', counted)
    return calls


@pytest.fixture
def no_demo_data(monkeypatch, tmp_path):
    """The demo configs' test data absent (they read $MMPVT_DEMO_DATA)."""
    monkeypatch.setenv('MMPVT_DEMO_DATA', str(tmp_path / 'absent'))


@pytest.mark.slow
def test_report_times_n_images_after_the_warm_up_one_at_a_time(no_demo_data, test_step_calls):
    report = measure_latency(DET, images=3, warmup=2, progress=False, log=lambda _: None)
    assert set(report) == REPORT_KEYS
    assert test_step_calls == [1] * (2 + 3)  # batch 1: warm-up and timed images, each once
    assert report['images'] == 3 and len(report['times_ms']) == 3 and report['warmup'] == 2
    mean = sum(report['times_ms']) / 3
    assert report['ms_per_image'] == pytest.approx(mean, rel=1e-9)
    assert report['images_per_s'] == pytest.approx(1000 / mean, rel=1e-9)
    assert min(report['times_ms']) <= report['median_ms'] <= max(report['times_ms'])
    assert report['batch'] == 1 and report['amp'] is None and report['device'] == 'cpu'
    assert report['source'].startswith('synthetic shapes, 480x640')


@pytest.mark.slow
def test_images_come_from_the_config_test_data_when_present(monkeypatch, tiny_shapes,
                                                            test_step_calls):
    monkeypatch.setenv('MMPVT_DEMO_DATA', str(tiny_shapes))
    report = measure_latency(DET, images=5, warmup=1, progress=False, log=lambda _: None)
    # 4 validation images, reused in turn for the 6 calls
    assert report['source'] == (f'{tiny_shapes}/annotations/instances_validation.json '
                                '(4 images, reused in turn)')
    assert len(test_step_calls) == 6 and report['images'] == 5


@pytest.mark.slow
def test_a_segmentation_config_is_timed_too(no_demo_data, test_step_calls):
    report = measure_latency(SEG, images=2, warmup=1, progress=False, log=lambda _: None)
    assert report['images'] == 2 and len(test_step_calls) == 3


@pytest.mark.parametrize('images,warmup', [(0, 5), (3, -1)])
def test_no_image_to_time_is_refused(images, warmup):
    with pytest.raises(ValueError, match='--images must be >= 1 and the warm-up >= 0'):
        measure_latency(DET, images=images, warmup=warmup)


@pytest.mark.slow
def test_benchmark_tool_prints_ms_per_image_and_images_per_second(tmp_path):
    # the script as a file (its own process): mmengine's ProgressBar writes to the sys.stdout of
    # when mmengine was imported, which an in-process run cannot capture; the other tests of
    # tools/analysis/benchmark_latency.py call its main in this process (helpers.run_main)
    out = run_command([
        'tools/analysis/benchmark_latency.py', DET, '--images', '2', '--json',
        str(tmp_path / 'latency.json')
    ], env=dict(MMPVT_DEMO_DATA=str(tmp_path / 'absent'))).stdout
    lines = out.splitlines()
    assert any('batch 1, 5 warm-up images, then 2 timed' in line for line in lines)
    assert '2/2' in out  # the progress bar reached the end
    summary = [line for line in lines if 'ms/img' in line]
    assert len(summary) == 1 and 'img/s over 2 images' in summary[0]
    with open(tmp_path / 'latency.json') as f:
        assert json.load(f)['images'] == 2


@pytest.mark.slow
def test_benchmark_tool_names_a_missing_config_in_one_line(tmp_path):
    result = run_main('analysis/benchmark_latency.py', [tmp_path / 'nope.py'], check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == \
        f'benchmark_latency: config file not found: {tmp_path / "nope.py"}'
