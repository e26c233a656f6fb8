"""Let torch's safe loading read the checkpoints mmengine's Runner writes, and nothing more.

torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7 calls
``torch.load(filename, map_location=...)`` without the argument, so resuming or testing from a
Runner checkpoint fails with ``Unsupported global: ...HistoryBuffer``. Turning the safety off
(``weights_only=False``, a patched torch.load, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD) would let any
checkpoint run code on load. Instead we allow-list exactly what mmengine puts into a checkpoint,
measured with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on Runner checkpoints:

* ``mmengine.logging.history_buffer.HistoryBuffer`` (the MessageHub's logged scalars), whose
  numpy arrays and scalars need numpy's array/scalar reconstructors, ``numpy.dtype`` and its
  concrete classes (``numpy.dtypes.Float64DType`` ...): data types, no code;
* ``builtins.getattr``, which HistoryBuffer's ``__getstate__`` uses to pickle its statistics
  methods (``getattr(HistoryBuffer, 'mean')``). The real getattr would reach any attribute (and
  so any code), so that name is bound to :func:`history_buffer_method`, which only returns
  HistoryBuffer's own statistics methods.

A checkpoint that pickles any other callable is still refused by torch (UnpicklingError).

Remote checkpoints: torch's safe default does not reach them. mmengine reads ``http(s)://`` (and
``open-mmlab://``, ``modelzoo://``, ``torchvision://``, ``mmcls://``, which resolve to URLs) with
``torch.hub.load_state_dict_from_url``, whose ``weights_only`` defaults to False: a downloaded
file (or one placed in the hub cache) could run code on load. :func:`safe_load_url` is the same
download-and-cache with ``weights_only=True``, and a refused file is an error naming the URL and
the cached file. It replaces the ``load_url`` that mmengine's HTTP loader calls, because every
one of those schemes ends in that call (registering a scheme would cover only ``http(s)://``).
"""
import os
import pickle
from typing import Callable, List, Optional
from urllib.parse import urlparse

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

_STATISTICS = ('min', 'max', 'current', 'mean')


def history_buffer_method(owner: type, name: str) -> Callable:
    """``getattr`` as HistoryBuffer's pickles use it, restricted to its statistics methods."""
    if owner is HistoryBuffer and (name in _STATISTICS
                                   or name in HistoryBuffer._statistics_methods):
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'Refusing getattr({owner!r}, {name!r}) while loading a checkpoint: only '
        f'HistoryBuffer statistics methods {_STATISTICS} may be looked up this way.')


def _numpy_globals() -> List[object]:
    """numpy's array/scalar reconstructors, under both module paths numpy pickles them with
    (numpy 1: ``numpy.core.multiarray``, numpy 2: ``numpy._core.multiarray``)."""
    from numpy.core import multiarray  # numpy 2 keeps this path as an alias
    # np.dtype instances are rebuilt through their concrete classes (numpy.dtypes.Float64DType...)
    dtype_classes = [c for c in vars(np.dtypes).values()
                     if isinstance(c, type) and issubclass(c, np.dtype)]
    entries: List[object] = [np.ndarray, np.dtype, *dtype_classes]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    return entries


def refusal_reason(error: BaseException) -> str:
    """The line of a torch.load error that says what was refused. torch's weights-only message
    is a paragraph about the ``weights_only`` default followed by that line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if 'GLOBAL' in line or 'nsupported' in line),
                lines[0] if lines else type(error).__name__)


def safe_load_url(url: str, model_dir: Optional[str] = None, map_location=None,
                  progress: bool = True, check_hash: bool = False,
                  file_name: Optional[str] = None) -> dict:
    """``torch.hub.load_state_dict_from_url`` (download once into ``model_dir``, default
    ``$TORCH_HOME/hub/checkpoints``) that unpickles with torch's safe loading and our allow-list.
    A file holding anything else raises UnpicklingError naming the URL and the cached file."""
    try:
        return torch.hub.load_state_dict_from_url(
            url, model_dir=model_dir, map_location=map_location, progress=progress,
            check_hash=check_hash, file_name=file_name, weights_only=True)
    except pickle.UnpicklingError as e:
        folder = model_dir or os.path.join(torch.hub.get_dir(), 'checkpoints')
        cached = os.path.join(folder, file_name or os.path.basename(urlparse(url).path))
        reason = refusal_reason(e)
        raise pickle.UnpicklingError(
            f'Refused to load the checkpoint {url} (cached as {cached}): it pickles objects '
            'other than tensors and the data of mmengine checkpoints, and unpickling them could '
            f'run code ({reason}). Delete the cached file if it is not what you meant to '
            'download.') from e


def allow_mmengine_checkpoints() -> None:
    """Register the allow-list with torch and make mmengine's URL loading safe (idempotent;
    adds, never removes, restrictions)."""
    torch.serialization.add_safe_globals(
        [HistoryBuffer, (history_buffer_method, 'builtins.getattr'), *_numpy_globals()])
    mmengine_checkpoint.load_url = safe_load_url
