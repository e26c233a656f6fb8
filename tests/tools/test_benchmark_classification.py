"""The classification benchmark (mmpvt_tools.benchmarks.classification,
tools/analysis/benchmark_classification.py)
on tiny inputs: both sides are the same variant, a step is a full training step, every field is
reported."""
import json

import pytest
import torch

from mmpvt_tools.benchmarks import classification
from ..helpers import run_main

pytestmark = pytest.mark.slow  # whole models and subprocesses: not in test-fast

# tools/analysis/benchmark_classification.py runs as its main(argv) in this process
# (helpers.run_main); a benchmark script as a script: tests/tools/test_benchmark_latency.py.


@pytest.mark.parametrize('arch,size', [('tiny', 224), ('b0', 96), ('b2_li', 96)])
def test_both_sides_are_the_same_variant(arch, size):
    # transformers' classifier of our arch table: as many parameters, logits of the same shape
    models = {
        name: classification.build(name, arch, size)
        for name in classification.IMPLEMENTATIONS
    }
    sizes = {name: classification.num_params(m) for name, m in models.items()}
    assert sizes['mmpvt'] == sizes['transformers']
    x = torch.randn(2, 3, size, size)
    for name, model in models.items():
        assert classification.logits_of(name, model, x).shape == (2, 1000)


def test_a_step_leaves_every_parameter_with_a_gradient_then_clears_it():
    model = classification.build('mmpvt', 'b0', 64)
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([3, 7])
    seen = []
    for p in model.parameters():
        p.register_hook(lambda g, seen=seen: seen.append(g))
    classification._train_step('mmpvt', model, x, y)()
    assert len(seen) == len(list(model.parameters()))
    assert all(p.grad is None for p in model.parameters())


def test_report_has_every_field():
    report = classification.run(['b0'], batch=2, size=64, warmup=0, repeats=1, log=lambda _: None)
    entry, = report['results']
    assert entry['arch'] == 'b0' and entry['params'] == 3_666_760  # the release's size
    for name in classification.IMPLEMENTATIONS:
        assert set(
            entry[f'{name}/time']) == {'median_s', 'min_s', 'max_s', 'repeats', 'images_per_s'}
        assert entry[f'{name}/memory']['rise_bytes'] > 0
    assert entry['speedup'] > 0 and entry['memory_ratio'] > 0


def test_cli_writes_the_report(tmp_path):
    out = run_main('analysis/benchmark_classification.py', [
        '--arch', 'b0', '--shapes', '64x64', '--batch', '2', '--warmup', '0', '--repeats', '1',
        '--no-memory', '--json', tmp_path / 'r.json'
    ]).stdout
    assert 'batch 2 at 64x64' in out and 'b0 ' in out
    report = json.loads((tmp_path / 'r.json').read_text())
    assert report['batch'] == 2 and report['size'] == 64 and len(report['results']) == 1


def test_cli_refuses_two_sizes():
    out = run_main('analysis/benchmark_classification.py', ['--shapes', '64x64', '96x96'],
                   check=False)
    assert out.returncode == 2 and 'one square --shapes and one --batch' in out.stderr


def write_authors_checkout(root, body):
    """A stand-in for a whai362/PVT checkout: classification/pvt_v2.py holding `body`."""
    (root / 'classification').mkdir(parents=True)
    (root / 'classification' / 'pvt_v2.py').write_text(body)
    return str(root)


def test_the_authors_factory_of_the_arch_builds_the_model_without_drop_path(tmp_path):
    repo = write_authors_checkout(tmp_path, ('import torch\n'
                                             'def pvt_v2_b2_li(pretrained=False, **kwargs):\n'
                                             '    m = torch.nn.Linear(3, kwargs["num_classes"])\n'
                                             '    m.kwargs = kwargs\n'
                                             '    return m\n'))
    model = classification.build('authors', 'b2_li', authors_repo=repo)
    assert model.kwargs == dict(num_classes=1000, drop_path_rate=0.0) and model.training


def test_a_checkout_without_the_authors_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'classification/pvt\.py \(a checkout of'):
        classification.build('authors', 'small', authors_repo=str(tmp_path))
    repo = write_authors_checkout(tmp_path / 'other', 'x = 1\n')
    with pytest.raises(AttributeError, match=r'pvt_v2\.py defines no pvt_v2_b0\(\)'):
        classification.build('authors', 'b0', authors_repo=repo)


def test_cli_refuses_an_authors_repo_without_the_model_files(tmp_path):
    out = run_main(
        'analysis/benchmark_classification.py',
        ['--arch', 'b0', '--authors-repo', str(tmp_path)], check=False)
    assert out.returncode == 2 and 'classification/pvt_v2.py' in out.stderr
