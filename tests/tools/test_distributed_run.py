"""mmpvt_tools.distributed_run's own machinery (its steps run in
tests/engine/test_distributed_runs.py): a launch that does not end in time is killed with all
its processes, as torchrun's workers would otherwise outlive it."""
import os
import time

from mmpvt_tools.distributed_run import run_in_own_group

# the launchers exec torchrun, which starts workers: a shell that leaves a child behind
LAUNCHER_WITH_A_WORKER = ['bash', '-c', 'sleep 300 & echo started; exec sleep 300']


def test_a_launch_past_its_timeout_is_killed_with_its_workers():
    start = time.perf_counter()
    returncode, output = run_in_own_group(LAUNCHER_WITH_A_WORKER, timeout=2, env=dict(os.environ))
    assert returncode is None and output.splitlines() == ['started']
    assert time.perf_counter() - start < 30
    leftover = os.popen('pgrep -f "^sleep 300$"').read().split()
    assert leftover == []
