"""The one place where mmpvt touches OpenMMLab registries.

``MODELS`` and ``TRANSFORMS`` are children of mmengine's root registries under the scope ``mmpvt``.
mmdet's and mmseg's registries are children of the same roots, so ``type='mmpvt.PVT'``,
``type='mmpvt.PVTv2'``, ``type='mmpvt.DETR'`` and ``type='mmpvt.AlignResize'`` resolve
from any of them (mmengine's
Registry.get searches the root's children by scope, and even imports the ``locations`` by itself
when the scope is not known yet).

We never register the names 'PyramidVisionTransformer' / 'PyramidVisionTransformerV2': they are
mmdet's.
"""
from mmengine.fileio import register_backend
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

from .datasets import AlignResize
from .fileio import ATOMIC_BACKEND, AtomicLocalBackend
from .models import PVT, PVTv2


def _child(parent: Registry, name: str, location: str) -> Registry:
    # A reload of this module must not create a second 'mmpvt' child: mmengine asserts that
    # scopes are unique among a registry's children.
    existing = parent.children.get('mmpvt')
    return existing if existing is not None else Registry(
        name, parent=parent, scope='mmpvt', locations=[location])


MODELS = _child(MMENGINE_MODELS, 'model', 'mmpvt.models')
TRANSFORMS = _child(MMENGINE_TRANSFORMS, 'transform', 'mmpvt.datasets')

# force=True: re-registering the same class (importlib.reload, a second import path through
# custom_imports) replaces our own entry instead of failing; no other package writes this scope.
MODELS.register_module(name='PVT', module=PVT, force=True)
MODELS.register_module(name='PVTv2', module=PVTv2, force=True)
TRANSFORMS.register_module(name='AlignResize', module=AlignResize, force=True)


def DETR(**kwargs):
    """Builds :class:`mmpvt.models.detectors.DETR`; imported on first use so that ``import mmpvt``
    does not import mmdet's models (1.7 s) for users who never build a DETR."""
    from .models.detectors import DETR as cls
    return cls(**kwargs)


MODELS.register_module(name='DETR', module=DETR, force=True)

# The checkpoint file backend of our tools: writes are atomic (see mmpvt.fileio).
register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)
