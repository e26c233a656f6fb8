"""The PVT families in plain PyTorch (torch only: no mmengine, mmcv, mmdet, mmseg or mmpretrain).

One module per family, read top to bottom: :mod:`.pvt_v1` (PVT, the paper) and :mod:`.pvt_v2`
(PVTv2), each its variant table, its own layers, stage, encoder and checkpoint layouts, and the
:class:`~.common.Family` record it registers; what both share in :mod:`.common`; the conversion
of any registered family's checkpoint layouts in :mod:`.layouts`.

A third family is one more module that registers its :class:`~.common.Family`, imported here
(and, for OpenMMLab configs, its backbone class registered in :mod:`mmpvt.models.backbones`).
"""
from . import pvt_v1, pvt_v2
from .common import (FAMILIES, Family, Layout, PyramidVisionTransformer, arch_names, build_encoder,
                     family_of, register_family)
from .layouts import (Conversion, convert_classifier, convert_to_mmpvt, extract_state_dict,
                      identify, infer_arch, unwrap)
from .pvt_v1 import PVT
from .pvt_v2 import PVTv2

__all__ = [
    'FAMILIES', 'Family', 'Layout', 'PyramidVisionTransformer', 'arch_names', 'build_encoder',
    'family_of', 'register_family', 'Conversion', 'convert_classifier', 'convert_to_mmpvt',
    'extract_state_dict', 'identify', 'infer_arch', 'unwrap', 'PVT', 'PVTv2', 'pvt_v1', 'pvt_v2'
]
