"""How a tool's process ends: after a distributed run it ends at once (os._exit) once its atexit
functions have run, with the tool's status; without one, as sys.exit ends it."""
import os
import subprocess
import sys

import pytest

from ..helpers import REPO

pytestmark = pytest.mark.slow  # subprocesses importing mmpvt and torch.distributed

# a one-process gloo group, ended as the tools end it, then the tool's exit
ENDING = """
import atexit, os, sys
import torch.distributed as dist
from mmpvt.apis.runner import end_distributed, exit_process
if sys.argv[1] == 'distributed':
    dist.init_process_group('gloo', init_method='file://' + sys.argv[2] + '/store', rank=0,
                            world_size=1)
    end_distributed()
atexit.register(lambda: open(os.path.join(sys.argv[2], 'atexit-ran'), 'w').close())
print('flushed?', end='')  # no newline: still in the buffer when the process ends
exit_process(3)
"""


@pytest.mark.parametrize('run', ['distributed', 'single'])
def test_a_tool_ends_with_its_status_after_its_atexit_functions_and_output(tmp_path, run):
    result = subprocess.run(
        [sys.executable, '-c', ENDING, run, str(tmp_path)], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert (tmp_path / 'atexit-ran').is_file()
    assert result.stdout == 'flushed?'
