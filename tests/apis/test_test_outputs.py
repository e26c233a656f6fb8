"""What tools/test.py writes (--out, --show-dir): checked before the test split runs, and the
results pickle written atomically (the previous file stays whole if the new one cannot be
finished)."""
import os
import pickle
import subprocess
import sys

import pytest

from mmpvt.apis import configure_test, load_config
from ..helpers import REPO, run_main

pytestmark = pytest.mark.slow  # configs of three projects, subprocesses importing mmdet

RETINA_DEMO = 'configs/demo/retinanet_pvt_t.py'
CLS_DEMO = 'configs/demo/cls_pvt_v2_b0.py'
FPN_DEMO = 'configs/demo/sem_fpn_pvt_t.py'


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / 'model.pth'  # configure_test only checks that it exists
    path.write_bytes(b'')
    return str(path)


@pytest.mark.parametrize('config,flag', [(RETINA_DEMO, 'out'), (CLS_DEMO, 'out'), (FPN_DEMO, 'out'),
                                         (RETINA_DEMO, 'show_dir')])
def test_an_output_under_a_file_is_refused_before_any_testing(tmp_path, checkpoint, config, flag):
    blocker = tmp_path / 'results'
    blocker.write_text('a file, where a directory would have to be')
    target = blocker / ('res.pkl' if flag == 'out' else 'vis')
    with pytest.raises(NotADirectoryError) as error:
        configure_test(load_config(config), checkpoint, **{flag: str(target)})
    option = '--' + flag.replace('_', '-')
    assert str(error.value) == f'{option} {target}: {blocker} is a file, not a directory'


def test_a_read_only_results_file_is_refused_before_any_testing(tmp_path, checkpoint):
    previous = tmp_path / 'res.pkl'
    previous.write_bytes(b'previous results')
    previous.chmod(0o444)
    with pytest.raises(PermissionError, match=f'--out {previous} is read-only; not replacing it'):
        configure_test(load_config(RETINA_DEMO), checkpoint, out=str(previous))


def test_test_py_says_it_in_one_line_and_exits_1(tmp_path, checkpoint):
    (tmp_path / 'results').write_text('')
    result = run_main('test.py',
                      [RETINA_DEMO, checkpoint, '--out',
                       str(tmp_path / 'results' / 'res.pkl')], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'test: --out {tmp_path}/results/res.pkl: {tmp_path}/results is a file, not a directory'
    ]


# A dump that the file system stops half-way (RLIMIT_FSIZE: writes past the limit fail with EFBIG,
# as on a full disk), over a previous results file.
INTERRUPTED_DUMP = """
import resource, signal, sys
from mmengine.evaluator import DumpResults
from mmdet.evaluation import DumpDetResults
from mmpvt.engine.metrics import atomic_dump_metric
metric_class = {'DumpResults': DumpResults, 'DumpDetResults': DumpDetResults}[sys.argv[2]]
if sys.argv[3] == 'atomic':
    metric_class = atomic_dump_metric(metric_class)
metric = metric_class(out_file_path=sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    metric.compute_metrics([{'scores': list(range(i, i + 100))} for i in range(1000)])
except OSError as e:
    print('write failed:', e.strerror)
"""


@pytest.mark.parametrize('dump_class', ['DumpResults', 'DumpDetResults'])
def test_a_results_dump_that_cannot_finish_leaves_the_previous_file_whole(tmp_path, dump_class):
    out = tmp_path / 'res.pkl'
    with open(out, 'wb') as f:
        pickle.dump(['previous results'], f)
    result = subprocess.run(
        [sys.executable, '-c', INTERRUPTED_DUMP,
         str(out), dump_class, 'atomic'], capture_output=True, text=True, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert 'write failed: File too large' in result.stdout, result.stderr
    with open(out, 'rb') as f:
        assert pickle.load(f) == ['previous results']
    assert sorted(os.listdir(tmp_path)) == ['res.pkl']  # no temporary left behind
