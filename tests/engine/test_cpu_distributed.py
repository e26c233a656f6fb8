"""mmpvt.CPUDistributedDataParallel, in two gloo processes: mmengine's DDP wrapper as the Runner
builds it on GPUs (broadcast_buffers=False, find_unused_parameters False), without device ids,
and with SyncBN (which has no CPU kernel) running as BatchNorm, where the plain wrapper stops at
the first training forward."""
import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from mmpvt_tools.distributed_run import free_port

pytestmark = pytest.mark.slow  # two processes


def _rank(rank: int, port: int, out: str) -> None:
    from mmengine.model import MMDistributedDataParallel

    from mmpvt.engine import CPUDistributedDataParallel
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    result = {}
    try:
        for name, wrapper in (('plain', MMDistributedDataParallel), ('cpu',
                                                                     CPUDistributedDataParallel)):
            torch.manual_seed(0)
            model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SyncBatchNorm(4))
            try:
                wrapped = (
                    wrapper(
                        module=model) if name == 'cpu' else wrapper(module=model, device_ids=None))
                wrapped(torch.randn(2, 3, 8, 8)).sum().backward()
                norm = wrapped.module[1]
                is_bn = isinstance(norm, nn.modules.batchnorm._BatchNorm)
                result[name] = dict(
                    norm='SyncBN' if isinstance(
                        norm, nn.SyncBatchNorm) else 'BatchNorm' if is_bn else type(norm).__name__,
                    broadcast_buffers=wrapped.broadcast_buffers,
                    find_unused=wrapped.find_unused_parameters, grad=wrapped.module[0].weight.grad
                    is not None)
            except (RuntimeError, ValueError) as e:
                result[name] = dict(error=type(e).__name__)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out, f'{rank}.json'), 'w') as f:
        json.dump(result, f)


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp('ddp')
    mp.spawn(_rank, args=(free_port(), str(out)), nprocs=2)
    return [json.loads((out / f'{r}.json').read_text()) for r in (0, 1)]


def test_syncbn_stops_the_plain_wrapper_on_cpu_processes(results):
    # what the config's SyncBN (Semantic FPN, Trans2Seg, Cascade heads) met on CPU before
    assert [r['plain'] for r in results] == [dict(error='ValueError')] * 2


def test_the_cpu_wrapper_trains_with_syncbn_as_batchnorm_as_mmengine_wraps_on_gpus(results):
    assert [r['cpu'] for r in results
            ] == [dict(norm='BatchNorm', broadcast_buffers=False, find_unused=False, grad=True)] * 2


@pytest.mark.parametrize('settings,expected', [({}, False), (dict(broadcast_buffers=True), True)])
def test_the_cpu_wrapper_takes_a_configs_own_broadcast_buffers(settings, expected, monkeypatch):
    # a config's model_wrapper_cfg of mmengine's DDP reaches this wrapper with its settings
    from mmpvt.engine import CPUDistributedDataParallel
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    dist.init_process_group('gloo', rank=0, world_size=1)
    try:
        wrapped = CPUDistributedDataParallel(module=nn.Linear(2, 2), device_ids=[0], **settings)
        assert wrapped.broadcast_buffers is expected and wrapped.device_ids is None
    finally:
        dist.destroy_process_group()
