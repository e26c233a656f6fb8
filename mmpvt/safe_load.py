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
"""
import pickle
from typing import Callable, List

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


def allow_mmengine_checkpoints() -> None:
    """Register the allow-list with torch (idempotent; adds, never removes, restrictions)."""
    torch.serialization.add_safe_globals(
        [HistoryBuffer, (history_buffer_method, 'builtins.getattr'), *_numpy_globals()])
