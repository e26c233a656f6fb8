"""Atomic writes (mmpvt.fileio): a file has its complete new content or is untouched, with the
mode an ordinary write would give, and no temporary of a killed writer stays behind."""
import os
import stat
import subprocess
import sys

import pytest

from mmpvt.fileio import atomic_dir, atomic_path


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def write(path, data=b'new'):
    with atomic_path(str(path)) as tmp, open(tmp, 'wb') as f:
        f.write(data)


@pytest.mark.parametrize('mask,expected', [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path, umask, mask, expected):
    umask(mask)
    write(tmp_path / 'epoch_12.pth')
    assert mode_of(tmp_path / 'epoch_12.pth') == expected


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    target = tmp_path / 'epoch_12.pth'
    target.write_bytes(b'old')
    os.chmod(target, 0o640)
    write(target)
    assert target.read_bytes() == b'new' and mode_of(target) == 0o640


def test_a_read_only_destination_is_refused_and_kept(tmp_path):
    target = tmp_path / 'released.pth'
    target.write_bytes(b'old')
    os.chmod(target, 0o444)
    with pytest.raises(PermissionError, match=r'released\.pth is read-only \(mode 444\)'):
        write(target)
    assert target.read_bytes() == b'old' and os.listdir(tmp_path) == ['released.pth']


def test_a_directory_gets_the_mode_the_umask_gives(tmp_path, umask):
    umask(0o022)
    with atomic_dir(str(tmp_path / 'data')) as tmp:
        open(os.path.join(tmp, 'a.txt'), 'w').close()
    assert mode_of(tmp_path / 'data') == 0o755


def test_atomic_path_removes_its_temporary_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(str(tmp_path / 'out.pth')) as tmp:
            open(tmp, 'wb').write(b'partial')
            raise RuntimeError('interrupted')
    assert list(tmp_path.iterdir()) == []


def _killed_writer(target):
    """Start a process that writes `target` atomically, kill -9 it mid-write."""
    code = (f'import time; from mmpvt.fileio import atomic_path\n'
            f'with atomic_path({str(target)!r}) as tmp:\n'
            f'    open(tmp, "wb").write(b"x" * 1000); print("writing", flush=True); time.sleep(60)')
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'writing'
    proc.kill()
    proc.wait()


@pytest.mark.slow  # a writer process killed mid-write
def test_a_killed_writer_leaves_no_partial_file_and_the_next_write_removes_its_temporary(tmp_path):
    target = tmp_path / 'iter_4.pth'
    _killed_writer(target)
    assert not target.exists()
    assert len(list(tmp_path.glob('.iter_4.pth.*.tmp'))) == 1  # hidden, until the next write
    write(target)
    assert os.listdir(tmp_path) == ['iter_4.pth']


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    import socket
    live = tmp_path / f'.iter_4.pth.{socket.gethostname()}-{os.getppid()}.abc.tmp'
    live.write_bytes(b'being written')
    other_host = tmp_path / '.iter_4.pth.elsewhere-1.abc.tmp'
    other_host.write_bytes(b'another machine')
    write(tmp_path / 'iter_4.pth')
    assert live.exists() and other_host.exists()


# The writers of training checkpoints (mmengine's CheckpointHook puts them through
# AtomicLocalBackend) and of ONNX files, in a process of their own whose writes past 256 KiB
# fail with EFBIG (RLIMIT_FSIZE), as on a full disk.
WRITERS = {
    'checkpoint':
    'from mmpvt.fileio import AtomicLocalBackend\n'
    'AtomicLocalBackend().put(b"x" * (1 << 20), PATH)\n',
    'onnx':
    'import torch\nfrom mmpvt.deploy.export import export_onnx\n'
    'export_onnx(torch.nn.Linear(512, 512), (torch.randn(1, 512), ), PATH, ["input"], '
    '["out"], {})\n',
}
FULL_DISK = ('import resource, signal, sys\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n'
             'resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 18, 1 << 18))\nPATH = sys.argv[1]\n'
             'from mmpvt.fileio import WriteFailed\ntry:\n{body}except WriteFailed as e:\n'
             '    print(e)\n')


@pytest.mark.slow  # a process of its own
@pytest.mark.parametrize('writer', list(WRITERS))
def test_a_write_the_disk_cannot_hold_names_the_file_and_keeps_the_previous_one(tmp_path, writer):
    path = tmp_path / f'{writer}.out'
    path.write_bytes(b'previous')
    body = ''.join(f'    {line}\n' for line in WRITERS[writer].splitlines())
    result = subprocess.run(
        [sys.executable, '-c', FULL_DISK.format(body=body),
         str(path)], capture_output=True, text=True)
    (line, ) = result.stdout.splitlines()
    assert line.startswith(f'could not write {path} (File too large, '), result.stderr
    assert line.endswith('MiB free there); the file there before, if any, is left as it was')
    assert path.read_bytes() == b'previous' and sorted(os.listdir(tmp_path)) == [path.name]
