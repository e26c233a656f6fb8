"""mmpvt_tools.distributed_run's own machinery (its steps run in
tests/engine/test_distributed_runs.py): a launch that does not end in time is killed with all
its processes, as torchrun's workers would otherwise outlive it."""
import os
import time

from mmpvt_tools.distributed_run import run_in_own_group

# the launchers exec torchrun, which starts workers: a shell that leaves a child behind (an
# unusual duration, so that no other process is taken for it)
WORKER = 'sleep 317'
LAUNCHER_WITH_A_WORKER = ['bash', '-c', f'{WORKER} & echo started; exec {WORKER}']


def living(command: str) -> list:
    """PIDs of processes running `command` that are alive: a killed process whose parent died
    too stays a zombie until init reaps it, which is dead, not left running."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmdline = f.read().replace(b'\0', b' ').decode().strip()
            with open(f'/proc/{pid}/stat') as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue  # ended while we looked
        if cmdline == command and state != 'Z':
            found.append(int(pid))
    return found


def test_a_launch_past_its_timeout_is_killed_with_its_workers():
    start = time.perf_counter()
    returncode, output = run_in_own_group(LAUNCHER_WITH_A_WORKER, timeout=2, env=dict(os.environ))
    assert returncode is None and output.splitlines() == ['started']
    assert time.perf_counter() - start < 30
    # the pipe closes while the killed worker is still exiting: give the kernel a moment
    deadline = time.monotonic() + 10
    while living(WORKER) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert living(WORKER) == []
