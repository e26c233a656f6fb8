"""What differs between the torch releases mmpvt supports (2.1 to 2.14), in one place.

Everything else in mmpvt calls these names instead of asking for a torch version. Features that an
older torch lacks are detected, not guessed from its version number; a caller that needs one goes
through :func:`require`, which refuses in one line naming the torch release that brings it:

* ``torch.export`` with ``Dim.DYNAMIC`` (symbolic sizes without named dims) and the dynamo ONNX
  exporter (``torch.onnx.export(..., dynamo=True)``): torch >= 2.6;
* ``torch.serialization.add_safe_globals`` (extending torch's safe unpickler): torch >= 2.4.
  Without it :mod:`mmpvt.safe_load` unpickles with an allow-list of its own, equally strict.
"""
import inspect
from typing import Tuple

import torch

# The torch release that first has each optional feature (checked for by the predicates below).
DYNAMIC_EXPORT_TORCH = '2.6'
SAFE_GLOBALS_TORCH = '2.4'


def torch_version() -> Tuple[int, int]:
    """(major, minor) of the running torch, e.g. (2, 1)."""
    major, minor = torch.__version__.split('+')[0].split('.')[:2]
    return int(major), int(minor)


def has_dynamic_export() -> bool:
    """torch.export with ``Dim.DYNAMIC`` and the dynamo ONNX exporter are available."""
    export = getattr(torch, 'export', None)
    dim = getattr(export, 'Dim', None)
    return (hasattr(dim, 'DYNAMIC')
            and 'dynamo' in inspect.signature(torch.onnx.export).parameters)


def has_safe_globals() -> bool:
    """torch's safe unpickler can be extended (``torch.serialization.add_safe_globals``)."""
    return hasattr(torch.serialization, 'add_safe_globals')


def require(available: bool, feature: str, since: str) -> None:
    """Raise RuntimeError saying that `feature` needs torch >= `since` unless `available`."""
    if not available:
        raise RuntimeError(f'{feature} needs torch >= {since}; this is torch {torch.__version__}')


def is_compiling() -> bool:
    """True while torch.compile (dynamo) traces the calling code."""
    compiler = getattr(torch, 'compiler', None)
    if hasattr(compiler, 'is_compiling'):  # torch >= 2.3
        return compiler.is_compiling()
    return torch._dynamo.is_compiling()


def is_exporting() -> bool:
    """True while torch.export (or the dynamo ONNX exporter) traces the calling code; False on
    a torch without ``torch.compiler.is_exporting``, which has no dynamic export either."""
    compiler = getattr(torch, 'compiler', None)
    return bool(hasattr(compiler, 'is_exporting') and compiler.is_exporting())


def legacy_onnx_export_kwargs() -> dict:
    """Keyword arguments that select the TorchScript ONNX exporter: ``dynamo=False`` where
    torch.onnx.export has the choice (torch >= 2.5 defaults to dynamo from 2.9), none before."""
    return ({'dynamo': False} if 'dynamo' in inspect.signature(torch.onnx.export).parameters
            else {})
