"""What differs between the torch releases mmpvt supports (2.1 to 2.14), in one place.

Everything else in mmpvt calls these names instead of asking for a torch version. Features that an
older torch lacks are detected, not guessed from its version number; a caller that needs one goes
through :func:`require`, which refuses in one line naming the torch release that brings it:

* ``torch.export`` with ``Dim.DYNAMIC`` (symbolic sizes without named dims) and the dynamo ONNX
  exporter (``torch.onnx.export(..., dynamo=True)``): torch >= 2.6;
* extending torch's safe unpickler with globals given as ``(callable, 'module.name')`` pairs
  (``torch.serialization.add_safe_globals``; mmengine's checkpoints need such a pair for a
  restricted ``getattr``): torch >= 2.6. torch 2.4 and 2.5 have ``add_safe_globals`` for plain
  callables only. Without the pairs :mod:`mmpvt.safe_load` unpickles with an allow-list of its
  own, equally strict.
"""
import functools
import inspect
import io
import warnings
from typing import Callable, Tuple

import torch
from torch import nn

# The torch release that first has each optional feature (checked for by the predicates below).
DYNAMIC_EXPORT_TORCH = '2.6'
SAFE_GLOBALS_TORCH = '2.6'


def torch_version() -> Tuple[int, int]:
    """(major, minor) of the running torch, e.g. (2, 1)."""
    major, minor = torch.__version__.split('+')[0].split('.')[:2]
    return int(major), int(minor)


def has_dynamic_export() -> bool:
    """torch.export with ``Dim.DYNAMIC`` and the dynamo ONNX exporter are available."""
    export = getattr(torch, 'export', None)
    dim = getattr(export, 'Dim', None)
    return (hasattr(dim, 'DYNAMIC') and 'dynamo' in inspect.signature(torch.onnx.export).parameters)


@functools.lru_cache(maxsize=None)
def has_safe_globals() -> bool:
    """torch's safe unpickler can be extended with ``(callable, 'module.name')`` pairs: tried once,
    on a tensor saved in memory, inside ``torch.serialization.safe_globals`` (which restores the
    list). torch 2.4-2.5 accept the pair but fail on it at load time (they read the pair's
    ``__module__``)."""
    scoped = getattr(torch.serialization, 'safe_globals', None)
    if scoped is None or not hasattr(torch.serialization, 'add_safe_globals'):
        return False
    buffer = io.BytesIO()
    torch.save(torch.zeros(1), buffer)
    buffer.seek(0)
    try:
        with scoped([(getattr, 'mmpvt_probe.getattr')]):
            torch.load(buffer, weights_only=True)
    except Exception:  # noqa: BLE001  whatever an older unpickler raises for the pair
        return False
    return True


class TorchTooOldError(ValueError):
    """A feature was asked for that the running torch lacks (a ValueError: the tools print it as
    one line, as any other unusable argument)."""


def require(available: bool, feature: str, since: str) -> None:
    """Raise :class:`TorchTooOldError` saying that `feature` needs torch >= `since` unless
    `available`."""
    if not available:
        raise TorchTooOldError(
            f'{feature} needs torch >= {since}; this is torch {torch.__version__}')


def is_compiling() -> bool:
    """True while torch.compile (dynamo) traces the calling code."""
    compiler = getattr(torch, 'compiler', None)
    if hasattr(compiler, 'is_compiling'):  # torch >= 2.3
        return compiler.is_compiling()
    return torch._dynamo.is_compiling()


# torch.compile of a training step through the feed-forward's autograd Function (GELU written
# into a workspace with out=): torch 2.14 traces it into one graph; torch 2.1's dynamo fails on
# the out= call ("functions with out=... arguments don't support automatic differentiation").
# Releases in between were not measured, so they take the plain path, which is right on all.
_COMPILE_TRACES_FUSED_FFN = torch_version() >= (2, 14)


def compile_traces_fused_ffn() -> bool:
    """False while torch.compile traces on a torch that cannot trace the fused feed-forward
    (then the feed-forward runs as plain PyTorch ops); True otherwise."""
    return _COMPILE_TRACES_FUSED_FFN or not is_compiling()


def is_exporting() -> bool:
    """True while torch.export (or the dynamo ONNX exporter) traces the calling code; False on
    a torch without ``torch.compiler.is_exporting``, which has no dynamic export either."""
    compiler = getattr(torch, 'compiler', None)
    return bool(hasattr(compiler, 'is_exporting') and compiler.is_exporting())


def legacy_onnx_export_kwargs() -> dict:
    """Keyword arguments that select the TorchScript ONNX exporter: ``dynamo=False`` where
    torch.onnx.export has the choice (torch >= 2.5 defaults to dynamo from 2.9), none before."""
    return ({
        'dynamo': False
    } if 'dynamo' in inspect.signature(torch.onnx.export).parameters else {})


def register_load_state_dict_pre_hook(module: nn.Module, hook: Callable) -> None:
    """``module.register_load_state_dict_pre_hook(hook)``: hook(module, state_dict, prefix,
    local_metadata, strict, missing_keys, unexpected_keys, error_msgs) runs before `module` loads
    a state dict. Public from torch 2.5; before, the same hook through the private method."""
    if hasattr(module, 'register_load_state_dict_pre_hook'):
        module.register_load_state_dict_pre_hook(hook)
    else:
        module._register_load_state_dict_pre_hook(hook, with_module=True)


def register_state_dict_hook(module: nn.Module, hook: Callable) -> None:
    """``module.register_state_dict_post_hook(hook)``: hook(module, state_dict, prefix,
    local_metadata) runs after `module` wrote its entries of a state dict (mmengine's
    ``get_state_dict`` calls it too); `local_metadata` is the module's entry of the state dict's
    ``_metadata``. Public from torch 2.5; before, the same hook through the private method."""
    if hasattr(module, 'register_state_dict_post_hook'):
        module.register_state_dict_post_hook(hook)
    else:
        module._register_state_dict_hook(hook)


# torch 2.4 gave torch.is_autocast_enabled a device argument and added get_autocast_dtype; decided
# once here, so that torch.compile traces a plain call (a try/except would not trace on 2.1)
_AUTOCAST_BY_DEVICE = hasattr(torch, 'get_autocast_dtype')


def autocast_enabled(device_type: str) -> bool:
    """``torch.is_autocast_enabled(device_type)`` (torch >= 2.4; before, per-device functions)."""
    if _AUTOCAST_BY_DEVICE:
        return torch.is_autocast_enabled(device_type)
    return (torch.is_autocast_cpu_enabled()
            if device_type == 'cpu' else torch.is_autocast_enabled())


def autocast_dtype(device_type: str) -> torch.dtype:
    """``torch.get_autocast_dtype(device_type)``: the dtype autocast computes in on the device."""
    if _AUTOCAST_BY_DEVICE:
        return torch.get_autocast_dtype(device_type)
    return (torch.get_autocast_cpu_dtype()
            if device_type == 'cpu' else torch.get_autocast_gpu_dtype())


def autocast_supports(device_type: str, dtype: torch.dtype) -> bool:
    """Whether ``torch.autocast(device_type, dtype=dtype)`` computes in `dtype` (torch 2.1's CPU
    autocast: bfloat16 only; it warns and disables itself, or raises, for float16)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            with torch.autocast(device_type, dtype=dtype):
                pass
        except RuntimeError:
            return False
    return not any('autocast' in str(w.message).lower() for w in caught)
