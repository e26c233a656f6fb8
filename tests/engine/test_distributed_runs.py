"""mmengine's own distributed path, as a cluster takes it, in two gloo processes: each demo config
trains through ``tools/dist_train.sh`` (torchrun, ``--launcher pytorch``, mmengine's
MMDistributedDataParallel with find_unused_parameters=False) and validates with every rank's
results gathered on rank 0, and resumes in a second launch: a v1 and a v2 RetinaNet, the Semantic
FPN (iteration-based, SyncBN) and the PVTv2 classifier (mmpretrain); the PVT RetinaNet's
checkpoint is also tested through ``tools/dist_test.sh`` and exported to ONNX. The steps are
mmpvt_tools.distributed_run's, the code the preflight runs on a GPU node.

Expected sample counts are read from the generated data (files of the validation split, lines of
its crop list), not from the code under test."""
import os

import pytest

from mmpvt_tools.distributed_run import STEPS, DistributedRun
from ..helpers import run_main

pytestmark = pytest.mark.slow  # torchrun launches of two processes

WORKERS = {
    f'{split}_dataloader.{key}': value
    for split in ('train', 'val', 'test')
    for key, value in (('num_workers', 0), ('persistent_workers', False))
}

# config, what the split is counted in, the steps run (each step a torchrun launch of two
# processes, about 12 s of both cores on an AMD EPYC with AVX-512): every kind trains, checkpoints,
# validates with the ranks' results gathered and resumes in a second launch; the PVT RetinaNet's
# checkpoint is also tested through dist_test.sh and exported
KINDS = {
    'PVT-RetinaNet': ('configs/demo/retinanet_pvt_t.py', 'images', STEPS),
    'PVTv2-RetinaNet': ('configs/demo/retinanet_pvt_v2_b0.py', 'images', ('train', 'resume')),
    'PVT-SemanticFPN': ('configs/demo/sem_fpn_pvt_t.py', 'images', ('train', 'resume')),
    'PVTv2-classifier': ('configs/demo/cls_pvt_v2_b0.py', 'crops', ('train', 'resume')),
}


def validation_samples(root, kind: str) -> int:
    if kind == 'crops':
        return len((root / 'crops' / 'validation.txt').read_text().splitlines())
    return len(os.listdir(root / 'images' / 'validation'))


@pytest.fixture(scope='module')
def finished_run(tiny_shapes, tmp_path_factory):
    """run_of(name) -> (the DistributedRun of KINDS[name], its step results); each runs once."""
    done = {}

    def run_of(name):
        if name not in done:
            config, counted_in, steps = KINDS[name]
            run = DistributedRun(config, str(tmp_path_factory.mktemp(name)), nproc=2,
                                 expected_samples=validation_samples(tiny_shapes, counted_in),
                                 cfg_options=dict(WORKERS, **{'train_dataloader.batch_size': 2}),
                                 export_shape=(96, 128), env={'MMPVT_DEMO_DATA': f'{tiny_shapes}/'})
            done[name] = run, list(run.steps(steps))
        return done[name]

    return run_of


@pytest.mark.parametrize('name', list(KINDS))
def test_two_gloo_processes_train_resume_and_evaluate_as_a_cluster_does(name, finished_run):
    _, results = finished_run(name)
    assert [r.line() for r in results if not r.ok] == []
    assert [r.name for r in results] == list(KINDS[name][2])


def test_syncbn_runs_as_batchnorm_in_gloo_processes_with_one_log_line(finished_run):
    run, _ = finished_run('PVT-SemanticFPN')
    lines = [
        line for line in run.outputs['train'].splitlines()
        if 'SyncBN layers run as BatchNorm' in line
    ]
    assert len(lines) == 1  # rank 0's (the other ranks log errors only)


def test_the_distributed_checkpoint_tests_and_draws_every_image_in_one_process(
        finished_run, tiny_shapes, tmp_path):
    run, _ = finished_run('PVT-RetinaNet')
    out = run_main('test.py', [
        run.short_config, run.last_checkpoint, '--work-dir',
        str(tmp_path / 'test'), '--show-dir',
        str(tmp_path / 'vis')
    ], env={'MMPVT_DEMO_DATA': f'{tiny_shapes}/'})
    assert "'coco/bbox_mAP'" in out.stdout and "'coco/bbox_mAP_50'" in out.stdout
    assert len(list((tmp_path / 'vis').rglob('*.png'))) == validation_samples(tiny_shapes, 'images')
