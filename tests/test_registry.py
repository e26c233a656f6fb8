"""`type='mmpvt.PVT'` builds from mmdet's, mmseg's and mmengine's MODELS; no name collisions."""
import importlib

import pytest
from mmengine.registry import DefaultScope

from mmpvt.models import PVT


@pytest.mark.parametrize('registry_module,scope', [
    ('mmdet.registry', 'mmdet'), ('mmseg.registry', 'mmseg'), ('mmengine.registry', 'mmengine')])
def test_mmpvt_pvt_builds_under_each_default_scope(registry_module, scope):
    MODELS = importlib.import_module(registry_module).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(dict(type='mmpvt.PVT', arch='tiny', out_indices=(3,)))
    assert type(model) is PVT and model.out_indices == (3,)


def test_mmdet_pyramid_vision_transformer_is_left_alone():
    from mmdet.models.backbones.pvt import PyramidVisionTransformer
    from mmdet.registry import MODELS
    from mmpvt.registry import MODELS as MMPVT_MODELS
    assert MODELS.get('PyramidVisionTransformer') is PyramidVisionTransformer
    assert 'PyramidVisionTransformer' not in MMPVT_MODELS.module_dict
    assert list(MMPVT_MODELS.module_dict) == ['PVT']


def test_importing_twice_or_through_custom_imports_does_not_fail():
    from mmengine.utils import import_modules_from_strings
    import mmpvt.registry
    importlib.reload(mmpvt.registry)
    import_modules_from_strings(['mmpvt'], allow_failed_imports=False)
    from mmdet.registry import MODELS
    assert MODELS.get('mmpvt.PVT').__name__ == 'PVT'
    assert mmpvt.__version__
