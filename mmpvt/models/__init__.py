"""The OpenMMLab side of the models: the families' encoders as registered backbones
(:mod:`.backbones`), strict checkpoint loading through mmengine (:mod:`.checkpoints`), the paper's
ViT baseline as a pyramid (:mod:`.vit_pyramid`), and building from a config (:mod:`.builder`);
mmdet 2.x-compatible DETR in :mod:`.detectors` and the Trans2Seg decode head in :mod:`.heads`
(both imported on demand by the registry). The models themselves are :mod:`mmpvt.families`."""
from .backbones import PVT, OpenMMLabBackbone, PVTv2, build_backbone
from .checkpoints import CheckpointMismatchError, CheckpointReadError, load_backbone_checkpoint
from .vit_pyramid import ViTPyramid

__all__ = [
    'PVT', 'PVTv2', 'OpenMMLabBackbone', 'ViTPyramid', 'build_backbone', 'CheckpointMismatchError',
    'CheckpointReadError', 'load_backbone_checkpoint'
]
