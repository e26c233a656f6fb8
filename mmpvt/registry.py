"""The one place where mmpvt touches OpenMMLab registries.

``MODELS`` is a child of mmengine's root model registry under the scope ``mmpvt``. mmdet's and
mmseg's MODELS are children of the same root, so ``type='mmpvt.PVT'`` resolves from any of them
(mmengine's Registry.get searches the root's children by scope, and even imports
``mmpvt.registry`` by itself when the scope is not known yet).

We never register the name 'PyramidVisionTransformer': it is mmdet's.
"""
from mmengine.fileio import register_backend
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

from .fileio import ATOMIC_BACKEND, AtomicLocalBackend
from .models.pvt import PVT

# A reload of this module must not create a second 'mmpvt' child: mmengine asserts scopes are unique.
MODELS = MMENGINE_MODELS.children.get('mmpvt')
if MODELS is None:
    MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmpvt', locations=['mmpvt.models'])

# force=True: re-registering the same class (importlib.reload, a second import path through
# custom_imports) replaces our own entry instead of failing; no other package writes this scope.
MODELS.register_module(name='PVT', module=PVT, force=True)

# The checkpoint file backend of our tools: writes are atomic (see mmpvt.fileio).
register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)
