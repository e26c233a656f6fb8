"""Atomic file writes: a file either has its complete new content or is untouched."""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Union

import torch
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to `path`; on success it is fsync'ed and renamed onto `path`.

    The rename is atomic on POSIX file systems, so a reader (or a resumed training run) never sees
    a half-written file, even when the writer is killed mid-way. On error the temporary is removed.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def atomic_dir(path: str) -> Iterator[str]:
    """Like :func:`atomic_path` for a directory: build it in a temporary sibling, then rename.

    `path` must not exist yet (nothing is ever overwritten half-way).
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=parent)
    try:
        yield tmp
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save`` that never leaves a partially written file at `path`."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, but every write is atomic (see :func:`atomic_path`).

    mmengine's CheckpointHook writes checkpoints through ``backend.put``, which for LocalBackend is
    a plain ``open(path, 'wb')``: a run killed mid-write leaves a truncated ``iter_N.pth`` that a
    resume then fails on. Selected with ``CheckpointHook(backend_args=dict(backend=ATOMIC_BACKEND))``
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
