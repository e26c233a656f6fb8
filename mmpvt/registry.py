"""mmpvt's registries: children of mmengine's root registries under the scope ``mmpvt``.

mmdet's, mmseg's and mmpretrain's registries are children of the same roots, so
``type='mmpvt.PVT'``, ``type='mmpvt.PVTv2'``, ``type='mmpvt.ViTPyramid'``, ``type='mmpvt.DETR'``,
``type='mmpvt.Trans2SegHead'``, ``type='mmpvt.AlignResize'``, ``type='mmpvt.CheckpointFitHook'``,
``type='mmpvt.ResumeAgreementHook'`` and ``type='mmpvt.CPUDistributedDataParallel'`` resolve
from any of them (mmengine's Registry.get searches the root's children by scope, and imports the
``locations`` on the first look-up in the scope).
Classes register themselves with ``@MODELS.register_module()`` where they are defined; this
module imports nothing of mmpvt.

``mmpvt.models.detectors`` (our DETR, a subclass of mmdet's) and ``mmpvt.models.heads`` (the
Trans2Seg decode head, a subclass of mmseg's BaseDecodeHead) are locations of their own rather
than imports of ``mmpvt.models``: they import mmdet's and mmseg's models (1.7 s), which
``import mmpvt`` should not cost a user who never builds from the mmpvt scope.

We never register the names 'PyramidVisionTransformer' / 'PyramidVisionTransformerV2': they are
mmdet's.
"""
from typing import List

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry


def _child(parent: Registry, name: str, locations: List[str]) -> Registry:
    # A reload of this module must not create a second 'mmpvt' child: mmengine asserts that
    # scopes are unique among a registry's children.
    existing = parent.children.get('mmpvt')
    return existing if existing is not None else Registry(name, parent=parent, scope='mmpvt',
                                                          locations=locations)


MODELS = _child(MMENGINE_MODELS, 'model',
                ['mmpvt.models', 'mmpvt.models.detectors', 'mmpvt.models.heads'])
TRANSFORMS = _child(MMENGINE_TRANSFORMS, 'transform', ['mmpvt.datasets'])
HOOKS = _child(MMENGINE_HOOKS, 'hook', ['mmpvt.engine'])
MODEL_WRAPPERS = _child(MMENGINE_MODEL_WRAPPERS, 'model_wrapper', ['mmpvt.engine'])
