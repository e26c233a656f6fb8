"""What every benchmark measures with (mmpvt_tools.measure): interleaved calls, summaries, the
comparison cells of the tables, the deploy benchmark's jobs."""
import os

from mmpvt_tools import measure
from ..helpers import REPO


def test_steps_run_in_turn_after_the_untimed_warm_up():
    calls = []
    steps = {name: (lambda name=name: calls.append(name)) for name in 'AB'}
    times = measure.interleave(steps, warmup=1, repeats=2)
    assert calls == ['A', 'B'] * 3
    assert [len(times[n]) for n in 'AB'] == [2, 2] and min(times['A'] + times['B']) >= 0


def test_summary_and_comparison_cell():
    assert measure.summary([3.0, 1.0, 2.0]) == dict(median_s=2.0, min_s=1.0, max_s=3.0, repeats=3)
    assert measure.compared([12.34, 14.1], '8.1f', 1.146, ' ms') == \
        '    12.3 /     14.1 ms = 1.15x'
    assert measure.compared([900, 1000, 2000], '.0f', 0.9) == '900 / 1000 / 2000 = 0.90x'


def test_a_step_in_this_process_reports_its_memory_rise():
    memory = measure.rss_rise(lambda: bytearray(64 * 2**20))
    assert memory['peak_bytes'] >= memory['rise_bytes'] >= 0


def test_deploy_benchmark_times_retinanet_for_the_v1_archs_only(monkeypatch):
    from mmpvt_tools.benchmarks import deploy
    calls = []

    def run(kind, arch, shapes, warmup, repeats, config=None):
        calls.append((kind, arch, config and os.path.relpath(config, REPO)))
        return [
            dict(kind=kind, arch=arch, shape=[32, 32], ms=dict.fromkeys(deploy.RUNTIMES, 1.0),
                 speedup=dict(compile=1.0,
                              onnxruntime=1.0), max_abs_error=dict(compile=0.0, onnxruntime=0.0))
        ]

    monkeypatch.setattr(deploy, 'run', run)
    lines = []
    rows = deploy.run_all(['small', 'b0'], [(32, 32)], retinanet=True, log=lines.append)
    assert calls == [('backbone', 'small', None), ('backbone', 'b0', None),
                     ('retinanet', 'small', os.path.join('configs', 'retinanet', 'pvt_s_1x.py'))]
    assert len(rows) == len(lines) == 3 and lines[2].startswith('retinanet small')
