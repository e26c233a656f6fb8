"""Models built by name or from a config: the one place that picks mmdet's, mmseg's or
mmpretrain's registry."""
from importlib import import_module

from mmengine.config import Config
from mmengine.registry import Registry, init_default_scope
from torch import nn

SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def registry_of(cfg: Config) -> Registry:
    """mmdet's, mmseg's or mmpretrain's MODELS (the config's ``default_scope``), after entering
    that scope. Imported by name: a detection user need not import mmseg or mmpretrain, and so
    on."""
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(f'default_scope must be one of {SCOPES} (inherit an mmdet::, mmseg:: or '
                         f'mmpretrain:: base config), got {scope!r}')
    init_default_scope(scope)
    return import_module(f'{scope}.registry').MODELS


def build_from_config(cfg: Config, pretrained: bool = True) -> nn.Module:
    """The model of an mmdet, mmseg or mmpretrain config. ``pretrained=False`` drops the
    backbone's ``init_cfg`` (no ImageNet download when the weights come from elsewhere or do not
    matter)."""
    model_cfg = cfg.model.copy()
    if not pretrained and 'backbone' in model_cfg:
        model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    return registry_of(cfg).build(model_cfg)
