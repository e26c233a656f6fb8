"""mmpvt.ResumeAgreementHook, in two gloo processes whose work dirs hold different checkpoints
(node-local work dirs, or a shared file system one node sees late): every rank resumes from the
checkpoint rank 0 chose, or every rank stops with the same one-line error."""
import json
import os
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config

from mmpvt_tools.distributed_run import free_port

pytestmark = pytest.mark.slow  # two processes

SCENARIOS = ('rank 1 lags', 'rank 0 has none', 'rank 1 cannot read')


def _rank(rank: int, port: int, root: str) -> None:
    """One rank: --resume in its own work dir for each scenario, then the hook; what it ends up
    resuming from (or the error it raised) goes to root/<scenario>-<rank>.json."""
    import mmpvt.engine.hooks as hooks
    from mmpvt.apis import configure_train
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        for scenario in SCENARIOS:
            work_dir = os.path.join(root, scenario.replace(' ', '_'), f'rank{rank}')
            cfg = configure_train(Config(dict(work_dir=work_dir)), resume='auto')
            runner = SimpleNamespace(_resume=cfg.resume, _load_from=cfg.load_from)
            if scenario == 'rank 1 cannot read' and rank == 1:  # as if on another node
                hooks.incomplete_checkpoint = lambda path: 'no such file on this node'
            try:
                hooks.ResumeAgreementHook().before_run(runner)
                result = dict(resume=runner._resume, load_from=runner._load_from)
            except RuntimeError as e:
                result = dict(error=str(e))
            with open(os.path.join(root, f'{scenario}-{rank}.json'), 'w') as f:
                json.dump(result, f)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def outcome(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume')
    files = {
        'rank 1 lags': {
            0: ['epoch_1', 'epoch_2'],
            1: ['epoch_1']
        },
        'rank 0 has none': {
            0: [],
            1: ['epoch_1']
        },
        'rank 1 cannot read': {
            0: ['epoch_1', 'epoch_2'],
            1: ['epoch_1', 'epoch_2']
        }
    }
    for scenario, by_rank in files.items():
        for rank, names in by_rank.items():
            work_dir = root / scenario.replace(' ', '_') / f'rank{rank}'
            work_dir.mkdir(parents=True)
            for name in names:
                torch.save({'meta': {}}, work_dir / f'{name}.pth')
    mp.spawn(_rank, args=(free_port(), str(root)), nprocs=2)
    return {
        (s, r): json.loads((root / f'{s}-{r}.json').read_text())
        for s in SCENARIOS
        for r in (0, 1)
    }, root


def test_a_lagging_rank_resumes_from_rank_0s_newer_checkpoint(outcome):
    results, root = outcome
    chosen = str(root / 'rank_1_lags' / 'rank0' / 'epoch_2.pth')
    assert results[('rank 1 lags', 0)] == results[('rank 1 lags', 1)] == dict(
        resume=True, load_from=chosen)


def test_when_rank_0_has_no_checkpoint_every_rank_starts_from_scratch(outcome):
    results, _ = outcome
    assert results[('rank 0 has none', 0)] == results[('rank 0 has none', 1)] == dict(
        resume=False, load_from=None)


def test_a_checkpoint_one_rank_cannot_read_stops_every_rank_with_one_message(outcome):
    results, root = outcome
    chosen = root / 'rank_1_cannot_read' / 'rank0' / 'epoch_2.pth'
    expected = (f'--resume: rank 0 resumes from {chosen}, which rank(s) [1] cannot read '
                '(node-local work dirs?); put the work dir on a file system every node sees, or '
                'give --resume PATH to a checkpoint every node can read')
    assert results[('rank 1 cannot read', 0)] == results[('rank 1 cannot read',
                                                          1)] == dict(error=expected)


@pytest.mark.parametrize('resume,added', [('auto', True), (None, False)])
def test_train_py_resume_runs_the_hook(tmp_path, resume, added):
    from mmpvt.apis import configure_train
    cfg = configure_train(Config(dict(work_dir=str(tmp_path))), resume=resume)
    types = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert ('mmpvt.ResumeAgreementHook' in types) == added
