"""What the tools share (mmpvt.apis.cli, mmpvt.apis.runner.load_config): options checked when
they are given, errors as one line."""
import argparse

import pytest

from mmpvt.apis import load_config
from mmpvt.apis.cli import add_runner_arguments, check_device, run_tool
from ..helpers import REPO

RETINA = f'{REPO}/configs/demo/retinanet_pvt_t.py'


def parser():
    p = argparse.ArgumentParser(prog='train')
    add_runner_arguments(p)
    return p


def test_a_cfg_option_without_equals_is_a_usage_error_naming_it(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(['--cfg-options', 'train_cfg.max_epochs'])
    assert exit_info.value.code == 2
    assert "--cfg-options: expected KEY=VALUE items, got 'train_cfg.max_epochs'" in \
        capsys.readouterr().err


def test_a_word_where_the_config_has_a_number_is_an_error_naming_the_key():
    with pytest.raises(
            ValueError, match=r"^--cfg-options train_cfg\.max_epochs=abc: expected a "
            r"number \(the config has 6\), got 'abc'$"):
        load_config(RETINA, {'train_cfg.max_epochs': 'abc'})
    assert load_config(RETINA, {'train_cfg.max_epochs': 2}).train_cfg.max_epochs == 2


@pytest.mark.parametrize('device', ['cuda:x', 'gpu', 'cpu:0'])
def test_a_device_that_is_not_cpu_cuda_or_cuda_n_is_refused(device):
    with pytest.raises(ValueError, match=f"--device must be cpu, cuda or cuda:N, got '{device}'"):
        check_device(device)


def test_a_users_error_is_one_line_and_exit_code_1(capsys):

    def main():
        raise FileNotFoundError('config file not found: x.py')

    assert run_tool('train', main) == 1
    assert capsys.readouterr().err == 'train: config file not found: x.py\n'


@pytest.mark.parametrize('backend,expected,logged',
                         [('nccl', 'gloo', True), ('gloo', 'gloo', False), ('mpi', 'mpi', False)])
def test_a_run_without_cuda_takes_gloo_where_the_config_says_nccl(backend, expected, logged,
                                                                  log_lines):
    # the configs name nccl (mmdet's, mmseg's, mmpretrain's runtimes): a GPU run keeps it
    from mmengine.config import Config

    from mmpvt.apis.runner import cpu_backend
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend=backend))))
    assert cpu_backend(cfg) == expected
    assert any('uses gloo instead of' in line for line in log_lines) == logged


@pytest.mark.parametrize(
    'wrapper,expected',
    [
        (None, dict(type='mmpvt.CPUDistributedDataParallel', find_unused_parameters=False)),
        (dict(type='MMDistributedDataParallel', find_unused_parameters=True),
         dict(type='mmpvt.CPUDistributedDataParallel', find_unused_parameters=True)),
        (
            dict(find_unused_parameters=True),  # mmengine's Runner: no type means its DDP wrapper
            dict(type='mmpvt.CPUDistributedDataParallel', find_unused_parameters=True)),
        (dict(type='MMFullyShardedDataParallel'),
         dict(type='MMFullyShardedDataParallel', device_ids=None)),
    ],
    ids=['none', 'mmengine-ddp', 'untyped', 'another-wrapper'])
def test_a_distributed_run_without_cuda_wraps_as_the_config_asks_without_device_ids(
        wrapper, expected, monkeypatch):
    # the config's own DDP settings must reach the CPU wrapper, which also runs SyncBN as
    # BatchNorm (torch has no CPU SyncBN); the process group is taken as already made
    from mmengine.config import Config

    from mmpvt.apis import runner
    monkeypatch.setattr(runner.dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(runner.torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(launcher='pytorch'))
    if wrapper is not None:
        cfg.model_wrapper_cfg = wrapper
    runner._setup_cpu_distributed(cfg)
    assert cfg.model_wrapper_cfg.to_dict() == expected


def test_no_demo_config_pins_a_process_group_backend():
    # a pinned gloo would make a GPU run of the demo talk over TCP instead of NCCL
    import glob
    for path in glob.glob(f'{REPO}/configs/demo/*.py'):
        with open(path) as f:
            assert 'backend=' not in f.read(), path
