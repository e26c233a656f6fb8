"""Checkpoints are data: every checkpoint mmengine reads in a process that imported mmpvt is
unpickled without running code, on every torch mmpvt supports (2.1 to 2.14).

mmengine 0.10.7 reads local files with ``torch.load(filename, map_location=...)`` and URLs with
``torch.hub.load_state_dict_from_url``, neither passing ``weights_only``. torch < 2.6 then
unpickles anything (a checkpoint can run code on load), torch >= 2.6 refuses mmengine's own
Runner checkpoints (``Unsupported global: ...HistoryBuffer``). So mmpvt registers, through
mmengine's extension point (``CheckpointLoader.register_scheme``), loaders for the schemes whose
mmengine loaders unpickle: local paths, ``http(s)://`` and the names that resolve to URLs or
local files (``torchvision://``, ``modelzoo://``, ``open-mmlab://``, ``openmmlab://``,
``mmcls://``), and ``s3://`` / ``petrel://``; and one of timm's, ``hf-hub:OWNER/NAME``, a model
on the Hugging Face Hub (:func:`load_from_hf_hub`). They read the same files as mmengine's and
unpickle them with :func:`safe_torch_load`, which lets through tensors and exactly what mmengine
puts into a checkpoint, measured with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on
Runner checkpoints:

* ``mmengine.logging.history_buffer.HistoryBuffer`` (the MessageHub's logged scalars), whose
  numpy arrays and scalars need numpy's array/scalar reconstructors, ``numpy.dtype`` and its
  concrete classes (``numpy.dtypes.Float64DType`` ...): data types, no code;
* ``builtins.getattr``, which HistoryBuffer's ``__getstate__`` uses to pickle its statistics
  methods (``getattr(HistoryBuffer, 'mean')``). The real getattr would reach any attribute (and
  so any code), so that name is bound to :func:`history_buffer_method`, which only returns
  HistoryBuffer's own statistics methods.

On torch >= 2.6 this is torch's own safe unpickler (``weights_only=True``) with the list above
added (``add_safe_globals``; the ``getattr`` as a ``(callable, name)`` pair, which 2.4-2.5 cannot
take). Older torch cannot extend its safe unpickler that way, so there the file is
unpickled by :class:`AllowListUnpickler`: pickle's documented way of restricting globals
(``find_class``), allowing torch's own weights-only globals plus the list above. Anything else
(``os.system``, ``eval``, any class) is refused with ``pickle.UnpicklingError`` before it is
called, naming the file.

``.safetensors`` files (a header and raw tensors, nothing to unpickle) are read wherever a
checkpoint file is, with the ``safetensors`` package (``pip install 'mmpvt[hub]'``).
"""
import _compat_pickle
import codecs
import collections
import functools
import io
import logging
import os
import os.path as osp
import pickle
import types
from typing import Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import urlparse

import numpy as np
import torch
import torch.distributed as dist
from mmengine.fileio import get_file_backend
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home,
                                        get_deprecated_model_names, get_external_models,
                                        get_mmcls_models, get_torchvision_models)

from .torch_compat import has_safe_globals

try:  # mmpvt[hub]: Hugging Face Hub names and .safetensors files
    import huggingface_hub
    from huggingface_hub import constants as hub_constants
    from huggingface_hub.errors import (EntryNotFoundError, HFValidationError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)
except ImportError:
    huggingface_hub = None
try:
    import safetensors
    import safetensors.torch
except ImportError:
    safetensors = None

HUB_EXTRA = "pip install 'mmpvt[hub]'"

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
    dtype_classes = [
        c for c in vars(np.dtypes).values() if isinstance(c, type) and issubclass(c, np.dtype)
    ]
    entries: List[object] = [np.ndarray, np.dtype, *dtype_classes]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        entries += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    return entries


def mmengine_globals() -> List[object]:
    """What mmengine's checkpoints pickle besides tensors, as ``add_safe_globals`` takes it:
    objects, or (object, 'module.name') where the pickled name is not the object's own."""
    return [HistoryBuffer, (history_buffer_method, 'builtins.getattr'), *_numpy_globals()]


def _qualified_name(entry) -> str:
    return f'{entry.__module__}.{entry.__qualname__}'


@functools.lru_cache(maxsize=None)
def _allowed_globals() -> Dict[str, object]:
    """{'module.name': object} that :class:`AllowListUnpickler` lets through: torch's own
    weights-only globals (tensors, storages, dtypes, OrderedDict, ...) and
    :func:`mmengine_globals`."""
    from torch import _weights_only_unpickler  # torch's list; public only as add_safe_globals
    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    # What later torch releases added to that list, as far as this torch has it: plain data types
    # (protocol 2 pickles bytes, e.g. numpy's array data, as _codecs.encode(text, 'latin1');
    # torch's MultiStepLR keeps its milestones in a Counter), every dtype and torch.device.
    allowed.update({
        '_codecs.encode': codecs.encode,
        'builtins.set': set,
        'builtins.bytearray': bytearray,
        'builtins.complex': complex,
        'collections.Counter': collections.Counter,
        'torch.device': torch.device
    })
    allowed.update((f'torch.{name}', value) for name, value in vars(torch).items()
                   if isinstance(value, torch.dtype))
    for entry in mmengine_globals():
        obj, name = entry if isinstance(entry, tuple) else (entry, _qualified_name(entry))
        allowed[name] = obj
    return allowed


class AllowListUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of :func:`_allowed_globals` (torch < 2.6)."""

    def find_class(self, module: str, name: str):
        # torch.save writes pickle protocol 2, which names builtins as Python 2 did
        # ('__builtin__.getattr'); pickle's own find_class maps them back the same way
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = _allowed_globals().get(f'{module}.{name}')
        if found is None:
            raise pickle.UnpicklingError(
                f'Trying to load unsupported GLOBAL {module}.{name}: not a tensor, nor data that '
                'mmengine checkpoints hold')
        return found


# torch.load's pickle_module: it subclasses `Unpickler` and calls `load` for legacy files
_ALLOW_LIST_PICKLE = types.SimpleNamespace(
    __name__='mmpvt_allow_list_pickle', Unpickler=AllowListUnpickler,
    load=lambda file, **kwargs: AllowListUnpickler(file, **kwargs).load(),
    UnpicklingError=pickle.UnpicklingError)


def safe_torch_load(f, map_location=None):
    """``torch.load(f, map_location)`` that unpickles tensors and mmengine's checkpoint data
    only, on any supported torch; anything else raises ``pickle.UnpicklingError``."""
    if has_safe_globals():
        return torch.load(f, map_location=map_location, weights_only=True)
    return torch.load(f, map_location=map_location, weights_only=False,
                      pickle_module=_ALLOW_LIST_PICKLE)


def refusal_reason(error: BaseException) -> str:
    """The line of a torch.load error that says what was refused. torch's weights-only message
    is a paragraph about the ``weights_only`` default followed by that line."""
    text = str(error)
    # torch's own unpickler names what it refused after this tag (on the same or a later line)
    text = text.split('WeightsUnpickler error:', 1)[-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return next(
        (line for line in lines if 'GLOBAL' in line or 'nsupported' in line or 'Refusing' in line),
        lines[0] if lines else type(error).__name__)


class CheckpointRefusedError(pickle.UnpicklingError):
    """A checkpoint that pickles something other than tensors and mmengine's checkpoint data."""


def _refused(source: str, error: pickle.UnpicklingError) -> CheckpointRefusedError:
    return CheckpointRefusedError(
        f'Refused to load the checkpoint {source}: it pickles objects other than tensors and the '
        f'data of mmengine checkpoints, and unpickling them could run code '
        f'({refusal_reason(error)}).')


class CheckpointFileError(ValueError):
    """A file given as a checkpoint that torch.save did not write (empty, an archive, a
    directory, damaged); the message names it and says what was expected."""


# What people hand over instead of the checkpoint inside: (magic bytes at offset, archive kind)
_ARCHIVES = ((0, b'\x1f\x8b', 'gzip'), (0, b'BZh', 'bzip2'), (0, b'\xfd7zXZ\x00', 'xz'),
             (0, b"7z\xbc\xaf'\x1c", '7z'), (257, b'ustar', 'tar'))
# The weights file of a model directory (Hugging Face's, or a folder around one checkpoint)
_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin', 'model.pth', 'model.pt',
                 'checkpoint.pth')


def directory_problem(path: str) -> str:
    """What to say of a directory given as a checkpoint: which file inside to give instead."""
    inside = [name for name in _WEIGHT_FILES if osp.isfile(osp.join(path, name))]
    if inside:
        return (f'{path} is a directory; expected a checkpoint file: give the weights inside it, '
                f'{osp.join(path, inside[0])}')
    return (f'{path} is a directory; expected a checkpoint file (written by torch.save, or '
            '.safetensors)')


def file_problem(path: str) -> str:
    """'' for a file that may be a checkpoint; else why it is none (empty, an archive)."""
    if osp.getsize(path) == 0:
        return (f'{path} is empty (0 bytes; an interrupted download or copy?); expected a '
                'checkpoint written by torch.save')
    with open(path, 'rb') as f:
        head = f.read(512)
    for offset, magic, kind in _ARCHIVES:
        if head[offset:offset + len(magic)] == magic:
            return (f'{path} is a {kind} archive, not a checkpoint: unpack it and give the '
                    'checkpoint file (.pth) inside')
    return ''


def starts_as_safetensors(head: bytes, size: int) -> bool:
    """Whether a file of `size` bytes starting with `head` (its first 9 bytes or more) is in the
    safetensors format: the header's length as 8 little-endian bytes, then the JSON header. (A
    torch zip file has a 0 there, a legacy torch pickle 0xf9.)"""
    return (len(head) >= 9 and head[8:9] == b'{'
            and 2 <= int.from_bytes(head[:8], 'little') <= size - 8)


def is_safetensors(path: str) -> bool:
    """Whether the file `path` is in the safetensors format: named so, or starting as one does."""
    if path.endswith('.safetensors'):
        return True
    with open(path, 'rb') as f:
        return starts_as_safetensors(f.read(9), osp.getsize(path))


def load_safetensors(data: Union[str, bytes], source: str) -> Dict[str, torch.Tensor]:
    """The tensors of a safetensors file (`data`: its path, or its bytes) on the CPU: a state
    dict (the format holds no code to run); `source` names it in every error."""
    if safetensors is None:
        raise CheckpointFileError(f'{source} is a .safetensors file; reading it needs the '
                                  f'safetensors package: {HUB_EXTRA}')
    try:
        if isinstance(data, bytes):
            return safetensors.torch.load(data)
        return safetensors.torch.load_file(data, device='cpu')
    except Exception as e:  # noqa: BLE001  safetensors' own error types differ between versions
        raise CheckpointFileError(
            f'Could not read the checkpoint {source}: {type(e).__name__}: {e}. Expected a '
            'safetensors file (is the file complete?)') from e


def _load_named(f, source: str, map_location):
    """`f` (a path or a file object) unpickled safely, or read as safetensors; `source` names
    it in every error."""
    problem = file_problem(f) if isinstance(f, str) else ''
    if problem:
        raise CheckpointFileError(problem)
    if isinstance(f, str) and is_safetensors(f):
        return load_safetensors(f, source)
    try:
        checkpoint = safe_torch_load(f, map_location)
    except pickle.UnpicklingError as e:
        reason = refusal_reason(e)
        if 'GLOBAL' in reason or 'global' in reason or reason.startswith('Refusing'):
            raise _refused(source, e) from e
        raise _unreadable(source, e) from e  # a file that is no checkpoint, or a damaged one
    except (RuntimeError, EOFError, OSError, ValueError) as e:  # truncated zip, text, ...
        if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise _unreadable(source, e) from e
    return prefer_trainer_weights(checkpoint, source)


def _unreadable(source: str, error: BaseException) -> CheckpointFileError:
    return CheckpointFileError(
        f'Could not read the checkpoint {source}: {type(error).__name__}: '
        f'{refusal_reason(error)}. Expected a PyTorch checkpoint written by torch.save (is the '
        'file complete?)')


def prefer_trainer_weights(checkpoint, source: str):
    """The weights a checkpoint's own trainer evaluates, as the top-level ``state_dict``.

    timm's train.py saves the EMA weights beside the trained ones as ``state_dict_ema``, and
    timm's loader takes them first: so does mmpvt, saying so. The authors' PVT code (DeiT's)
    saves ``model_ema`` beside ``model`` and evaluates ``model``: kept, with a line that the EMA
    weights were left. mmengine's EMAHook already writes the EMA weights as ``state_dict``
    (``ema_state_dict`` holds the others), which its loaders take; nothing to do there."""
    if not isinstance(checkpoint, dict):
        return checkpoint
    if isinstance(checkpoint.get('state_dict_ema'), dict):
        print_log(
            f'{source}: took the EMA weights (state_dict_ema), as timm\'s loader does; '
            'the non-EMA state_dict is not loaded', logger='current')
        checkpoint = dict(checkpoint, state_dict=checkpoint['state_dict_ema'])
        del checkpoint['state_dict_ema']
    elif all(isinstance(checkpoint.get(key), dict) for key in ('model', 'model_ema')):
        print_log(
            f'{source}: took the weights under model, which the authors\' code evaluates; '
            'its model_ema weights are not loaded', logger='current')
    return checkpoint


# ---- the loaders mmpvt registers with mmengine's CheckpointLoader ------------------------------
# Named load_from_<scheme> as mmengine's are: its log line reads the backend from the name.
def load_from_local(filename: str, map_location=None) -> dict:
    """A local checkpoint file (mmengine's scheme '')."""
    filename = osp.expanduser(filename)
    if osp.isdir(filename):
        raise CheckpointFileError(directory_problem(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return _load_named(filename, filename, map_location)


def safe_load_url(url: str, model_dir: Optional[str] = None, map_location=None,
                  progress: bool = True, file_name: Optional[str] = None) -> dict:
    """Download `url` once into `model_dir` (default ``$TORCH_HOME/hub/checkpoints``), as
    ``torch.hub.load_state_dict_from_url`` does, and unpickle it with :func:`safe_torch_load`.
    A refused file raises UnpicklingError naming the URL and the cached file."""
    folder = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(folder, file_name or osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        os.makedirs(folder, exist_ok=True)
        print_log(f'Downloading {url} to {cached}', logger='current')
        torch.hub.download_url_to_file(url, cached, progress=progress)
    return _load_named(cached, f'{url} (cached as {cached})', map_location)


def rank_zero_first(fetch: Callable[[], object]):
    """`fetch()` on rank 0 first, then on the other ranks (which then find rank 0's download in
    a shared cache), as mmengine's loaders order downloads; outside a distributed run, just
    `fetch()`. Rank 0 releases the others even when it fails, so that none waits forever."""
    distributed = dist.is_available() and dist.is_initialized()
    if distributed and dist.get_rank() > 0:
        dist.barrier()
        return fetch()
    try:
        return fetch()
    finally:
        if distributed:
            dist.barrier()


def load_from_http(url: str, map_location=None) -> dict:
    """``http(s)://``: rank 0 downloads first, the other ranks read its file (as mmengine's)."""
    return rank_zero_first(
        lambda: safe_load_url(url, map_location=map_location, progress=os.isatty(0)))


def load_from_torchvision(filename: str, map_location=None) -> dict:
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``): torchvision's URL."""
    name = filename.split('://', 1)[1]
    return load_from_http(get_torchvision_models()[name], map_location)


def load_from_openmmlab(filename: str, map_location=None) -> dict:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: mmengine's model list, a URL or a file
    under mmengine's home."""
    scheme, name = filename.split('://', 1)
    renamed = get_deprecated_model_names().get(name)
    if renamed is not None:
        print_log(f'{scheme}://{name} is deprecated in favor of {scheme}://{renamed}',
                  logger='current', level=logging.WARNING)
        name = renamed
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location)
    return load_from_local(osp.join(_get_mmengine_home(), url), map_location)


def load_from_mmcls(filename: str, map_location=None) -> dict:
    """``mmcls://NAME``: an mmcls classifier's backbone, renamed as mmengine's loader does."""
    checkpoint = load_from_http(get_mmcls_models()[filename[len('mmcls://'):]], map_location)
    state_dict = checkpoint.get('state_dict', checkpoint)
    backbone = {k[len('backbone.'):]: v for k, v in state_dict.items() if k.startswith('backbone.')}
    return {'state_dict': backbone}


def load_from_ceph(filename: str, map_location=None) -> dict:
    """``s3://`` / ``petrel://`` through mmengine's file backend."""
    backend = get_file_backend(filename, backend_args={'backend': 'petrel'})
    data = backend.get(filename)
    if filename.endswith('.safetensors') or starts_as_safetensors(data[:9], len(data)):
        return load_safetensors(data, filename)
    with io.BytesIO(data) as buffer:
        return _load_named(buffer, filename, map_location)


# timm's prefix for a Hub model; its weights file: safetensors first, as timm and transformers take
HF_HUB_PREFIX = 'hf-hub:'
HUB_WEIGHT_FILES = ('model.safetensors', 'pytorch_model.bin')


def names_remote_checkpoint(name: str) -> bool:
    """Whether the checkpoint `name` is a URL or a Hub name (not a local path)."""
    return '://' in name or name.startswith(HF_HUB_PREFIX)


def hub_repo(name: str) -> Tuple[str, Optional[str]]:
    """(repo id, revision or None) of ``hf-hub:OWNER/NAME[@REVISION]``; CheckpointFileError for
    another form, or where huggingface_hub is not installed."""
    if huggingface_hub is None:
        raise CheckpointFileError(f'{name}: Hugging Face Hub names need the huggingface_hub '
                                  f'package: {HUB_EXTRA}')
    repo, _, revision = name[len(HF_HUB_PREFIX):].partition('@')
    if repo.count('/') != 1 or not all(repo.split('/')):
        raise CheckpointFileError(f'{name}: expected {HF_HUB_PREFIX}OWNER/NAME (optionally '
                                  f'@REVISION), e.g. {HF_HUB_PREFIX}timm/pvt_v2_b2.in1k')
    return repo, revision or None


def hub_weights_file(name: str) -> str:
    """The local path of the weights of ``hf-hub:OWNER/NAME[@REVISION]`` in the Hugging Face
    cache (``$HF_HOME/hub``), downloaded there by ``huggingface_hub`` the first time: the first
    of :data:`HUB_WEIGHT_FILES` already cached is taken without asking the Hub (so it works
    offline, ``HF_HUB_OFFLINE=1``), else the first the model has is downloaded."""
    repo, revision = hub_repo(name)
    for filename in HUB_WEIGHT_FILES:
        cached = huggingface_hub.try_to_load_from_cache(repo, filename, revision=revision)
        if isinstance(cached, str):
            return cached
    for filename in HUB_WEIGHT_FILES:
        try:
            return huggingface_hub.hf_hub_download(repo, filename, revision=revision)
        except LocalEntryNotFoundError as e:  # offline, or the Hub out of reach
            raise CheckpointFileError(
                f'{name}: not in the Hugging Face cache ({hub_constants.HF_HUB_CACHE}) and the '
                'Hub cannot be reached (offline, or HF_HUB_OFFLINE=1): download it once on a '
                'machine online with the same HF_HOME, or give a local file') from e
        except EntryNotFoundError:
            continue  # the model's weights under the other name
        except (RepositoryNotFoundError, RevisionNotFoundError) as e:
            raise CheckpointFileError(f'{name}: no such model (or revision) on the Hugging Face '
                                      'Hub, or it is private or gated (log in with '
                                      '`huggingface-cli login`)') from e
        except HFValidationError as e:
            raise CheckpointFileError(f'{name}: not a valid Hugging Face model id ({e})') from e
        except OSError as e:  # HTTP errors (401, 403, 429, 5xx), SSL, proxy, a dropped download
            raise CheckpointFileError(f'{name}: could not download {filename} from the Hugging '
                                      f'Face Hub: {type(e).__name__}: {e}') from e
    raise CheckpointFileError(f'{name}: the model has none of the weight files '
                              f'{", ".join(HUB_WEIGHT_FILES)}')


def load_from_hf_hub(name: str, map_location=None) -> dict:
    """``hf-hub:OWNER/NAME[@REVISION]``: the model's weights from the Hugging Face cache
    (:func:`hub_weights_file`), rank 0's download first (:func:`rank_zero_first`); every rank
    checks the name before."""
    hub_repo(name)
    path = rank_zero_first(lambda: hub_weights_file(name))
    return _load_named(path, f'{name} (cached as {path})', map_location)


SCHEMES = {
    '': load_from_local,
    HF_HUB_PREFIX: load_from_hf_hub,
    ('http://', 'https://'): load_from_http,
    ('modelzoo://', 'torchvision://'): load_from_torchvision,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    'mmcls://': load_from_mmcls,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
}


def allow_mmengine_checkpoints() -> None:
    """Register the loaders of :data:`SCHEMES` with mmengine's CheckpointLoader and, where torch
    has ``add_safe_globals``, mmengine's checkpoint data with torch's safe unpickler
    (idempotent; adds, never removes, restrictions)."""
    if has_safe_globals():
        torch.serialization.add_safe_globals(mmengine_globals())
    for prefixes, loader in SCHEMES.items():
        CheckpointLoader.register_scheme(prefixes, loader, force=True)
