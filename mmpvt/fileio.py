"""Atomic file writes: a file either has its complete new content or is untouched."""
import contextlib
import errno
import fcntl
import io
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Iterator, List, Optional, Union

import torch
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; restored at once
    os.umask(mask)
    return mask


def _writer_tag() -> str:
    """host-pid of this process, put into temporary names so a later writer can tell a
    temporary left by a killed process from one still being written."""
    return f'{socket.gethostname()}-{os.getpid()}'


def _remove_stale_temporaries(directory: str, name: str) -> List[str]:
    """Remove the temporaries of `name` in `directory` that a dead process of this host left
    (``.{name}.{host}-{pid}.*.tmp``); returns their paths."""
    host = socket.gethostname()
    removed = []
    for entry in os.listdir(directory):
        m = re.fullmatch(re.escape(f'.{name}.') + r'(.+)-(\d+)\..*\.tmp', entry)
        if not m or m.group(1) != host or int(m.group(2)) == os.getpid():
            continue
        try:
            os.kill(int(m.group(2)), 0)
            continue  # its writer is alive: still being written
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, another user's
        stale = os.path.join(directory, entry)
        (shutil.rmtree if os.path.isdir(stale) else os.remove)(stale)
        removed.append(stale)
    return removed


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to `path`; on success it is fsync'ed and renamed onto `path`.

    The rename is atomic on POSIX file systems, so a reader (or a resumed training run) never sees
    a half-written file, even when the writer is killed mid-way. On error the temporary is removed;
    temporaries of `path` left by killed writers are removed first.

    The new file gets the mode an ordinary ``open(path, 'w')`` would give: an existing
    destination's mode, else 0666 less the umask (``mkstemp`` alone would leave 0600, which a
    colleague on a shared cluster cannot read). A destination without write permission is
    refused (PermissionError), as ``open`` would refuse it, instead of being replaced.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    if os.path.exists(path):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if not mode & stat.S_IWUSR:
            raise PermissionError(f'{path} is read-only (mode {mode:o}); not replacing it')
    else:
        mode = 0o666 & ~_umask()
    name = os.path.basename(path)
    _remove_stale_temporaries(directory, name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{name}.{_writer_tag()}.', suffix='.tmp', dir=directory)
    except OSError as e:
        raise _write_failed(path, e) from e
    os.close(fd)
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:  # (the body's writes are Python's: they raise OSError)
        if isinstance(e, (WriteFailed, PermissionError)):
            raise
        raise _write_failed(path, e) from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class WriteFailed(OSError):
    """A file that could not be written (a full disk, a quota, a file size limit, a read-only
    file system); the message names it and the space left. Written through :func:`atomic_path`,
    the file there before, if any, is left whole. ``errno`` / ``strerror`` are the cause's."""

    def __init__(self, errno_: Optional[int], strerror: Optional[str], message: str = '') -> None:
        super().__init__(errno_, strerror)
        self.message = message

    def __str__(self) -> str:
        return self.message or super().__str__()


def _write_failed(path: str, error: OSError, directory: bool = False) -> WriteFailed:
    reason = error.strerror or str(error) or type(error).__name__
    try:
        where = path if directory else os.path.dirname(path)
        free = f', {shutil.disk_usage(where).free / 2**20:.0f} MiB free there'
    except OSError:
        free = ''
    what = (f'into {path} ({reason}{free}); the files there before are left as they were'
            if directory else
            f'{path} ({reason}{free}); the file there before, if any, is left as it was')
    return WriteFailed(error.errno, error.strerror, f'could not write {what}')


@contextlib.contextmanager
def atomic_dir(path: str) -> Iterator[str]:
    """Like :func:`atomic_path` for a directory: build it in a temporary sibling, then rename.

    `path` must not exist yet (nothing is ever overwritten half-way).
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(path)
    _remove_stale_temporaries(parent, name)
    tmp = tempfile.mkdtemp(prefix=f'.{name}.{_writer_tag()}.', suffix='.tmp', dir=parent)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700, as for files above
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


def incomplete_checkpoint(path: str) -> Optional[str]:
    """Why `path` is not a complete checkpoint, or None. torch.save writes a zip archive whose
    central directory comes last, so a truncated file (a killed copy, a full disk) has none."""
    try:
        with zipfile.ZipFile(path):
            return None
    except (zipfile.BadZipFile, OSError) as e:
        return f'incomplete or not a PyTorch checkpoint ({e})'


def check_writable(path: str, what: str, directory: bool = False) -> None:
    """Raise one line naming `path` unless a file can be written there (`directory`: into it),
    without writing anything at `path`; for tools to call before hours of work, not after.

    A parent that does not exist yet is fine if its nearest existing ancestor is a writable
    directory (it will be created); an existing read-only file is refused, as
    :func:`atomic_path` will refuse to replace it."""
    path = os.path.abspath(path)
    if os.path.isdir(path) and not directory:
        raise IsADirectoryError(f'{what} {path} is a directory; give a file path')
    existing = path if directory else os.path.dirname(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f'{what} {path}: {existing} is a file, not a directory')
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as e:
        raise PermissionError(f'{what} {path}: cannot write in {existing} ({e.strerror})') from None
    if not directory and os.path.isfile(path) and not os.stat(path).st_mode & stat.S_IWUSR:
        raise PermissionError(f'{what} {path} is read-only; not replacing it')


WORK_DIR_LOCK = '.mmpvt-run.lock'
# what flock answers on file systems that do not lock (Lustre without -o flock, some FUSE and
# CIFS mounts): there the run goes on without the lock, with a warning
NO_LOCKING = (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL)


class WorkDirInUse(BlockingIOError):
    """Another run owns the work dir (:func:`work_dir_lock`)."""


@contextlib.contextmanager
def work_dir_lock(work_dir: str, what: str = 'training') -> Iterator[None]:
    """Own `work_dir` for the block: a second run into it stops at once with one line naming the
    run that has it (host, pid, start time), instead of both writing checkpoints there.

    The lock is ``flock`` on ``work_dir/.mmpvt-run.lock``, which the operating system releases
    when its process ends, however it ends: a killed run leaves the file, not the lock. (On a
    network file system whose flock is local to each node, two nodes are not kept apart.)
    """
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, WORK_DIR_LOCK)
    f = open(path, 'a+')
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or 'another run'
            raise WorkDirInUse(
                f'work dir {os.path.abspath(work_dir)} is in use by {holder}; give another '
                '--work-dir, or wait for that run to end') from None
        except OSError as e:
            if e.errno not in NO_LOCKING:
                raise
            warnings.warn(f'the file system of {work_dir} cannot lock files ({e.strerror}): '
                          'this run does not own the work dir; do not start another into it')
        f.seek(0)
        f.truncate()
        f.write(f'{what} pid {os.getpid()} on {socket.gethostname()} since '
                f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n')
        f.flush()
        yield
    finally:
        f.close()  # releases the lock


# what a write answers on a full disk, a quota, a file size limit, a read-only file system
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


@contextlib.contextmanager
def staged_outputs(out_dir: str) -> Iterator[str]:
    """Yield a new staging directory inside `out_dir` for a writer that cannot write atomically
    itself (mmdet's, mmseg's and mmpretrain's inferencers); when the body returns, every file in
    it replaces its namesake under `out_dir` (one rename each, so none is ever half-written).
    On any error nothing of the staging directory remains and `out_dir` is as it was; an
    OSError of a full disk (or quota, size limit, read-only file system) becomes
    :class:`WriteFailed` naming `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.staging-', dir=out_dir)
    try:
        yield staging
        for root, _, names in os.walk(staging):
            for name in names:
                source = os.path.join(root, name)
                target = os.path.join(out_dir, os.path.relpath(source, staging))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.replace(source, target)
    except OSError as e:
        if isinstance(e, WriteFailed) or e.errno not in WRITE_ERRNOS:
            raise
        raise _write_failed(out_dir, e, directory=True) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` that never leaves a partially written file at `path`. Serialised in memory
    first (as mmengine's save_checkpoint does): torch's own file writer reports a full disk as
    an iostream RuntimeError without errno, Python's write as an OSError naming the cause."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(buffer.getbuffer())


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, but every write is atomic (see :func:`atomic_path`).

    mmengine's CheckpointHook writes checkpoints through ``backend.put``, which for LocalBackend is
    a plain ``open(path, 'wb')``: a run killed mid-write leaves a truncated ``iter_N.pth`` that a
    resume then fails on. Selected with
    ``CheckpointHook(backend_args=dict(backend=ATOMIC_BACKEND))``
    (our tools/train.py does this by default).
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        with atomic_path(str(filepath)) as tmp, open(tmp, 'wb') as f:
            f.write(obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        with atomic_path(str(filepath)) as tmp, open(tmp, 'w', encoding=encoding) as f:
            f.write(obj)


ATOMIC_BACKEND = 'mmpvt_atomic_local'
register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)  # force: a reload re-registers
