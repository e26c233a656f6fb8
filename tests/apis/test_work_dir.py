"""tools/train.py owns its work dir for the run: a second training into it stops at once with one
line, a run that was killed does not leave it locked, and a work dir that cannot be one is said
before anything is built."""
import errno
import fcntl
import os
import subprocess
import sys

import pytest

from mmpvt.apis.runner import RANK_VARIABLES, launch_rank
from mmpvt.fileio import WORK_DIR_LOCK, work_dir_lock
from ..helpers import REPO, run_main

pytestmark = pytest.mark.slow  # tools/train.py and subprocesses

RETINA_DEMO = 'configs/demo/retinanet_pvt_t.py'


def test_a_second_training_into_a_work_dir_in_use_stops_with_one_line(tmp_path):
    work_dir = tmp_path / 'work'
    with work_dir_lock(str(work_dir)):
        holder = (work_dir / WORK_DIR_LOCK).read_text().strip()
        result = run_main('train.py', [RETINA_DEMO, '--work-dir', str(work_dir)], check=False)
    assert holder.startswith(f'training pid {os.getpid()} on ')
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'train: work dir {work_dir} is in use by {holder}; give another --work-dir, or wait '
        'for that run to end'
    ]
    assert os.listdir(work_dir) == [WORK_DIR_LOCK]  # nothing of the second run was written


KILLED_HOLDER = """
import os, signal, sys
from mmpvt.fileio import work_dir_lock
with work_dir_lock(sys.argv[1]):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_run_killed_while_it_owns_the_work_dir_leaves_no_lock_behind(tmp_path):
    work_dir = str(tmp_path / 'work')
    killed = subprocess.run([sys.executable, '-c', KILLED_HOLDER, work_dir], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert killed.returncode == -9 and os.path.isfile(os.path.join(work_dir, WORK_DIR_LOCK))
    with work_dir_lock(work_dir):
        pass  # taken at once


def test_a_work_dir_that_is_a_file_is_one_line(tmp_path):
    not_a_dir = tmp_path / 'work'
    not_a_dir.write_text('')
    result = run_main('train.py', [RETINA_DEMO, '--work-dir', str(not_a_dir)], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'train: --work-dir {not_a_dir}: {not_a_dir} is a file, not a directory'
    ]


def test_a_file_system_that_cannot_lock_trains_on_with_a_warning(tmp_path, monkeypatch):

    def no_locks(f, operation):  # Lustre without -o flock answers ENOSYS
        raise OSError(errno.ENOSYS, 'Function not implemented')

    monkeypatch.setattr(fcntl, 'flock', no_locks)
    warning = 'cannot lock files .*this run does not own the work dir'
    with pytest.warns(UserWarning, match=warning):
        with work_dir_lock(str(tmp_path)):
            entered = True
    assert entered


@pytest.mark.parametrize('variable', RANK_VARIABLES)
def test_only_rank_0_of_any_launcher_takes_the_lock(monkeypatch, variable):
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert launch_rank() == 0
    monkeypatch.setenv(variable, '3')
    assert launch_rank() == 3
