"""mmengine Runner checkpoints load under torch's safe loading once mmpvt is imported; nothing else
is let through."""
import os
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import mmpvt  # noqa: F401  (installs the allow-list)
from mmpvt.safe_load import safe_torch_load
from .helpers import RunsCode, poison_hub_cache

pytestmark = pytest.mark.slow  # whole models, training or subprocesses: not in test-fast


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x, y, mode='loss'):
        out = self.linear(torch.stack(x))
        return dict(loss=((out - torch.stack(y))**2).mean())


class ToyData(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(x=torch.randn(2, generator=g), y=torch.randn(1, generator=g))


def toy_runner(work_dir, max_epochs, resume=False, name='a'):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(dataset=ToyData(), batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        # MultiStepLR keeps its milestones in a collections.Counter, pickled into the checkpoint
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
            dict(type='MultiStepLR', milestones=[1], by_epoch=True)
        ],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        resume=resume)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('toy')
    toy_runner(work_dir, max_epochs=1).train()
    return work_dir


def test_without_mmpvt_torchs_safe_loading_refuses_runner_checkpoints(runner_checkpoint):
    code = (f'import torch; torch.load({str(runner_checkpoint / "epoch_1.pth")!r}, '
            'weights_only=True)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode != 0 and 'HistoryBuffer' in result.stderr


def test_second_runner_resumes_from_saved_checkpoint(runner_checkpoint):
    runner = toy_runner(runner_checkpoint, max_epochs=2, resume=True, name='b')
    runner.train()
    assert runner.epoch == 2 and runner.iter == 4  # 2 iterations per epoch, one epoch resumed
    resumed = safe_torch_load(str(runner_checkpoint / 'epoch_2.pth'))
    history = resumed['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer) and history.mean() > 0


def load_through_mmengine(path):
    """What tools/test.py, load_from, init_cfg and inferencers do with a local file."""
    from mmengine.runner.checkpoint import CheckpointLoader
    return CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def test_a_local_checkpoint_that_would_run_code_is_refused_naming_it(tmp_path):
    marker = tmp_path / 'code_ran'
    torch.save({
        'state_dict': {
            'w': torch.zeros(1)
        },
        'payload': RunsCode(str(marker))
    }, tmp_path / 'evil.pth')
    with pytest.raises(pickle.UnpicklingError,
                       match=r'Refused to load the checkpoint .*evil\.pth: .*GLOBAL posix\.mkdir'):
        load_through_mmengine(tmp_path / 'evil.pth')
    assert not marker.exists()


def test_checkpoint_with_pickled_callable_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'hook': os.system}, path)
    with pytest.raises(pickle.UnpicklingError, match=r'unsupported GLOBAL posix\.system'):
        load_through_mmengine(path)


class _GetattrPayload:

    def __reduce__(self):  # what an attacker would pickle: getattr(<allowed class>, <anything>)
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _GetattrPayload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Refusing getattr"):
        load_through_mmengine(path)


def test_runner_refuses_to_resume_from_a_malicious_checkpoint(tmp_path):
    marker = tmp_path / 'code_ran'
    torch.save({
        'state_dict': {},
        'meta': {},
        'payload': RunsCode(str(marker))
    }, tmp_path / 'evil.pth')
    runner = toy_runner(tmp_path, max_epochs=1)
    with pytest.raises(pickle.UnpicklingError, match=r'unsupported GLOBAL posix\.mkdir'):
        runner.resume(str(tmp_path / 'evil.pth'))
    assert not marker.exists()


# ---- checkpoints given as URLs ----------------------------------------------------------------
URL = 'https://example.invalid/evil.pth'


@pytest.fixture
def poisoned_hub_cache(tmp_path, monkeypatch):
    """$TORCH_HOME/hub/checkpoints holds the file `URL` names, as a download would leave it;
    returns the marker its unpickling would create."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    return poison_hub_cache(tmp_path)


def _mmengine_loader(tmp_path):
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.load_checkpoint(URL, map_location='cpu')


def _mmengine_load_checkpoint(tmp_path):  # tools/test.py, load_from, inferencers
    from mmengine.runner import load_checkpoint
    load_checkpoint(nn.Linear(1, 1), URL, map_location='cpu')


def _backbone_init_cfg(tmp_path):  # every shipped config's Pretrained URL
    from mmpvt.models import PVT
    PVT('tiny', init_cfg=dict(type='Pretrained', checkpoint=URL)).init_weights()


def _convert_checkpoint_file(tmp_path):  # tools/convert_checkpoint.py
    from mmpvt.apis.convert import convert_checkpoint_file
    convert_checkpoint_file(URL, str(tmp_path / 'out.pth'))


@pytest.mark.parametrize(
    'load',
    [_mmengine_loader, _mmengine_load_checkpoint, _backbone_init_cfg, _convert_checkpoint_file])
def test_a_url_checkpoint_that_would_run_code_is_refused_naming_it(poisoned_hub_cache, tmp_path,
                                                                   load):
    with pytest.raises((pickle.UnpicklingError, ValueError),
                       match=r'Refused to load the checkpoint https://example\.invalid/evil\.pth '
                       r'\(cached as .*evil\.pth\).*GLOBAL posix\.mkdir'):
        load(tmp_path)
    assert not poisoned_hub_cache.exists()


def test_a_safe_url_checkpoint_still_loads(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import CheckpointLoader
    (tmp_path / 'hub' / 'checkpoints').mkdir(parents=True)
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'hub' / 'checkpoints' / 'ok.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    loaded = CheckpointLoader.load_checkpoint('https://example.invalid/ok.pth')
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))


def test_torchs_safe_unpickler_is_extended_only_where_it_takes_mmengines_getattr_pair(monkeypatch):
    # torch 2.4-2.5 have add_safe_globals and safe_globals but fail at load time on a
    # (callable, name) pair, which mmengine's checkpoints need: there mmpvt's own allow-list
    # unpickler must be used. Stood in for by a safe_globals whose loads fail as theirs do.
    import contextlib

    from mmpvt import torch_compat

    @contextlib.contextmanager
    def pairs_fail_at_load(globals_):

        def load(*args, **kwargs):
            raise AttributeError("'tuple' object has no attribute '__module__'")

        with monkeypatch.context() as m:
            m.setattr(torch, 'load', load)
            yield

    assert torch_compat.has_safe_globals.__wrapped__() == hasattr(torch.serialization,
                                                                  'safe_globals')
    monkeypatch.setattr(torch.serialization, 'safe_globals', pairs_fail_at_load, raising=False)
    monkeypatch.setattr(torch.serialization, 'add_safe_globals', lambda g: None, raising=False)
    assert torch_compat.has_safe_globals.__wrapped__() is False
