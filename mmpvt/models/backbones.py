"""The families' encoders as OpenMMLab backbones, registered as ``mmpvt.PVT`` and ``mmpvt.PVTv2``.

Each is its plain encoder (:mod:`mmpvt.families`) with :class:`OpenMMLabBackbone` mixed in by
:func:`openmmlab_backbone`:
``init_cfg`` (``dict(type='Pretrained', checkpoint=...)`` loads any known layout strictly), and a
load-state-dict pre-hook through which every other loader (mmengine's ``load_checkpoint``,
``load_from``, ``--resume``, the inferencers, mmpretrain's ImageClassifier) converts and checks
what it loads. A third family registers its class here the same way, in one line.
"""
import copy
import inspect
from typing import List, Optional, Union

from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize

from ..families import family_of, pvt_v1, pvt_v2
from ..registry import MODELS
from ..torch_compat import register_load_state_dict_pre_hook, register_state_dict_hook
from .checkpoints import adopt_classifier_state_dict, adopt_state_dict, load_backbone_checkpoint
from .checkpoints.loading import (LAYER_NORM_EPS_METADATA, compute_as_saved, record_layer_norm_eps,
                                  set_layer_norm_eps)

InitCfg = Optional[Union[dict, List[dict]]]


def _adopt_loaded_state_dict(module, state_dict, prefix, local_metadata, *args) -> None:
    adopt_state_dict(module, state_dict, prefix)
    compute_as_saved(module, local_metadata.get(LAYER_NORM_EPS_METADATA),
                     f'the state dict under {prefix!r}' if prefix else 'the state dict')


class OpenMMLabBackbone(BaseModule):
    """What turns a family's plain encoder into an OpenMMLab backbone, mixed in after it (see
    :func:`openmmlab_backbone`, which also adds the ``init_cfg`` argument). The encoder's
    ``super().__init__()`` lands here (then in mmengine's BaseModule), so the checkpoint pre-hook
    is in place before any weight exists.
    """

    def __init__(self) -> None:
        super().__init__(init_cfg=None)
        # Any loader (whole detectors through mmengine, load_from, inferencers) gets the
        # authors'/mmdet/timm/transformers layouts converted and a mismatch raised, not logged.
        register_load_state_dict_pre_hook(self, _adopt_loaded_state_dict)
        # ... and a state dict saved from it records a LayerNorm eps that is not the authors'
        register_state_dict_hook(self, record_layer_norm_eps)

    def _checkpoint_filter(self, state_dict: dict, prefix: str, *args) -> None:
        """mmpretrain's ImageClassifier registers this as *its* load-state-dict pre-hook (prefix:
        the classifier's): the authors', timm's and transformers' whole ImageNet classifiers
        are renamed to the classifier's ``backbone.*`` / ``head.fc.*`` before anything loads."""
        adopt_classifier_state_dict(self, state_dict, prefix)

    def init_weights(self) -> None:
        """The authors' random init, then `init_cfg` applied; a ``Pretrained`` entry goes through
        our loader.

        mmengine's generic 'Pretrained' initialiser loads with strict=False and would only log
        mismatches; we convert the checkpoint layout first and refuse mismatched keys or shapes.
        ``init_cfg`` may be a dict or a list of dicts (as mmengine allows); other entries are
        applied by mmengine before the checkpoint is loaded.
        """
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        cfgs = [c for c in cfgs if c is not None]
        pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
        if len(pretrained) > 1:
            raise ValueError(f'{self.family}: init_cfg has {len(pretrained)} Pretrained entries; '
                             'give one checkpoint')
        self.reset_parameters()
        others = [c for c in cfgs if c.get('type') != 'Pretrained']
        if others:
            initialize(self, others)
        if pretrained:
            cfg = pretrained[0]
            if 'checkpoint' not in cfg:
                raise ValueError(f"{self.family}: init_cfg {cfg} has no 'checkpoint' (a path or "
                                 'URL)')
            load_backbone_checkpoint(self, cfg['checkpoint'], prefix=cfg.get('prefix'))
        self._is_init = True


_INIT_CFG_DOC = '''
    As an OpenMMLab backbone it also takes ``init_cfg``: ``dict(type='Pretrained',
    checkpoint=PATH_OR_URL[, prefix=...])`` (or a list holding one) loads the authors', mmdet
    3.x, timm, transformers or mmpvt weights, also wrapped in a detector, segmentor or classifier
    checkpoint, strictly (:mod:`mmpvt.models.checkpoints`). None: the authors' random
    initialisation. ``layer_norm_eps`` (default None: the authors' eps, 1e-5 in patch embedding
    and spatial reduction, 1e-6 elsewhere) sets every LayerNorm's: 1e-6 computes as mmdet's
    ports, whose weights also set it when they load.
'''


def openmmlab_backbone(encoder: type) -> type:
    """The class `encoder` (a family's plain encoder) with :class:`OpenMMLabBackbone` mixed in and
    an ``init_cfg`` argument; same name, signature and docstring (plus ``init_cfg``), defined in
    this module (so that it pickles by name). Its weights are initialised by ``init_weights()``
    (the Runner calls it), not in the constructor. Register it with
    ``@MODELS.register_module()``."""

    def __init__(self, *args, init_cfg: InitCfg = None, layer_norm_eps: Optional[float] = None,
                 **kwargs) -> None:
        super(backbone, self).__init__(*args, **kwargs)
        self.init_cfg = copy.deepcopy(init_cfg)
        if layer_norm_eps is not None:
            set_layer_norm_eps(self, layer_norm_eps)

    def finish(self) -> None:
        # OpenMMLab builds a model, then its Runner calls init_weights(): initialising in the
        # constructor as well would draw every random number twice
        self._freeze_stages()

    signature = inspect.signature(encoder.__init__)
    __init__.__signature__ = signature.replace(parameters=[
        *signature.parameters.values(),
        inspect.Parameter('init_cfg', inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=InitCfg),
        inspect.Parameter('layer_norm_eps', inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Optional[float])
    ])
    backbone = type(
        encoder.__name__, (encoder, OpenMMLabBackbone),
        dict(__init__=__init__, finish=finish, __doc__=(encoder.__doc__ or '') + _INIT_CFG_DOC,
             __module__=__name__, __qualname__=encoder.__name__))
    return backbone


PVT = MODELS.register_module()(openmmlab_backbone(pvt_v1.PVT))
PVTv2 = MODELS.register_module()(openmmlab_backbone(pvt_v2.PVTv2))


def build_backbone(arch: str, **kwargs) -> OpenMMLabBackbone:
    """The registered backbone of variant `arch` (any family: 'small', 'b2', ...); `kwargs` go
    to its class (e.g. ``drop_path_rate=0.0``, ``init_cfg=...``)."""
    name = family_of(arch).name
    # a registered family's class is in MODELS already; MODELS.get would first import every
    # location of the registry (mmdet's and mmseg's models with the detectors and heads:
    # seconds) to build a backbone that needs neither
    backbone = MODELS.module_dict.get(name) or MODELS.get(name)
    return backbone(arch, **kwargs)
