"""Atomic file writes: a file either has its complete new content or is untouched."""
import contextlib
import os
import shutil
import tempfile
from typing import Any, Iterator

import torch


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
