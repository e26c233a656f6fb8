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

pytestmark = pytest.mark.slow  # whole models, training or subprocesses: not in test-fast


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x, y, mode='loss'):
        out = self.linear(torch.stack(x))
        return dict(loss=((out - torch.stack(y)) ** 2).mean())


class ToyData(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(x=torch.randn(2, generator=g), y=torch.randn(1, generator=g))


def toy_runner(work_dir, max_epochs, resume=False, name='a'):
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=ToyData(), batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)), resume=resume)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('toy')
    toy_runner(work_dir, max_epochs=1).train()
    return work_dir


def test_without_mmpvt_torch_refuses_runner_checkpoints(runner_checkpoint):
    code = f'import torch; torch.load({str(runner_checkpoint / "epoch_1.pth")!r})'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode != 0 and 'HistoryBuffer' in result.stderr


def test_second_runner_resumes_from_saved_checkpoint(runner_checkpoint):
    runner = toy_runner(runner_checkpoint, max_epochs=2, resume=True, name='b')
    runner.train()
    assert runner.epoch == 2 and runner.iter == 4  # 2 iterations per epoch, one epoch resumed
    resumed = torch.load(str(runner_checkpoint / 'epoch_2.pth'))
    history = resumed['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer) and history.mean() > 0


def test_checkpoint_with_pickled_callable_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'hook': os.system}, path)
    with pytest.raises(pickle.UnpicklingError, match=r'unsupported GLOBAL posix\.system'):
        torch.load(path)


class _GetattrPayload:
    def __reduce__(self):  # what an attacker would pickle: getattr(<allowed class>, <anything>)
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'x': _GetattrPayload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Refusing getattr"):
        torch.load(path)


def test_runner_refuses_to_resume_from_a_malicious_checkpoint(tmp_path):
    torch.save({'state_dict': {}, 'meta': {}, 'hook': os.system}, tmp_path / 'evil.pth')
    runner = toy_runner(tmp_path, max_epochs=1)
    with pytest.raises(pickle.UnpicklingError, match=r'unsupported GLOBAL posix\.system'):
        runner.resume(str(tmp_path / 'evil.pth'))
