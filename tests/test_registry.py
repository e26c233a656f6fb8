"""`type='mmpvt.PVT'` / `'mmpvt.PVTv2'` build from mmdet's, mmseg's, mmpretrain's and mmengine's
MODELS, `'mmpvt.AlignResize'` from their TRANSFORMS; no name collisions."""
import importlib

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmpvt.datasets import AlignResize
from mmpvt.models import PVT, PVTv2
from mmpvt.models.builder import build_from_config, registry_of


@pytest.mark.parametrize('registry_module,scope', [('mmdet.registry', 'mmdet'),
                                                   ('mmseg.registry', 'mmseg'),
                                                   ('mmpretrain.registry', 'mmpretrain'),
                                                   ('mmengine.registry', 'mmengine')])
def test_mmpvt_pvt_builds_under_each_default_scope(registry_module, scope):
    MODELS = importlib.import_module(registry_module).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(dict(type='mmpvt.PVT', arch='tiny', out_indices=(3, )))
    assert type(model) is PVT and model.out_indices == (3, )
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(dict(type='mmpvt.PVTv2', arch='b0', out_indices=(1, )))
    assert type(model) is PVTv2 and model.out_indices == (1, )


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_a_configs_default_scope_picks_that_librarys_models(scope):
    """What tools/train.py and tools/test.py build from: the config's default_scope."""
    assert registry_of(Config(
        dict(default_scope=scope))) is importlib.import_module(f'{scope}.registry').MODELS


def test_a_config_of_another_scope_is_refused_naming_the_scopes():
    with pytest.raises(
            ValueError, match=r"^default_scope must be one of \('mmdet', 'mmseg', "
            r"'mmpretrain'\) .*, got 'mmocr'$"):
        registry_of(Config(dict(default_scope='mmocr')))


def test_an_image_classifier_config_builds_with_our_backbone():
    """A classification config (default_scope 'mmpretrain') names the backbone 'mmpvt.PVT'."""
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            model=dict(type='ImageClassifier', backbone=dict(type='mmpvt.PVT', arch='tiny',
                                                             out_type='cls_token'),
                       head=dict(type='LinearClsHead', num_classes=10, in_channels=512))))
    model = build_from_config(cfg)
    assert type(model.backbone) is PVT and model.backbone.with_cls_token


@pytest.mark.parametrize('registry_module,scope', [('mmdet.registry', 'mmdet'),
                                                   ('mmseg.registry', 'mmseg')])
def test_align_resize_builds_from_each_transforms_registry(registry_module, scope):
    TRANSFORMS = importlib.import_module(registry_module).TRANSFORMS
    with DefaultScope.overwrite_default_scope(scope):
        t = TRANSFORMS.build(dict(type='mmpvt.AlignResize', scale=(2048, 512), keep_ratio=True))
    assert type(t) is AlignResize and t.size_divisor == 32


def test_mmdet_pyramid_vision_transformer_is_left_alone():
    from mmdet.models.backbones.pvt import PyramidVisionTransformer, PyramidVisionTransformerV2
    from mmdet.registry import MODELS

    from mmpvt.registry import MODELS as MMPVT_MODELS
    assert MODELS.get('PyramidVisionTransformer') is PyramidVisionTransformer
    assert MODELS.get('PyramidVisionTransformerV2') is PyramidVisionTransformerV2
    assert sorted(
        MMPVT_MODELS.module_dict) == ['DETR', 'PVT', 'PVTv2', 'Trans2SegHead', 'ViTPyramid']


@pytest.mark.slow  # a fresh interpreter
def test_import_mmpvt_does_not_import_mmdet_or_mmseg_models():
    import subprocess
    import sys
    out = subprocess.run([
        sys.executable, '-c', 'import sys, mmpvt; print(sorted(m for m in '
        'sys.modules if m.startswith(("mmdet.models", "mmseg.models", '
        '"mmpvt.models.detectors", "mmpvt.models.heads"))))'
    ], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'


def test_mmpvt_trans2seg_head_builds_from_mmsegs_registry():
    from mmseg.registry import MODELS

    from mmpvt.models.heads import Trans2SegHead
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = MODELS.build(dict(type='mmpvt.Trans2SegHead', num_classes=3))
    assert type(head) is Trans2SegHead and head.out_channels == 3


def test_mmpvt_detr_names_our_detr_and_detr_stays_mmdets():
    from mmdet.models.detectors import DETR as MMDetDETR
    from mmdet.registry import MODELS

    from mmpvt.models.detectors import DETR
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert MODELS.get('mmpvt.DETR') is DETR
        assert MODELS.get('DETR') is MMDetDETR


def test_importing_twice_or_through_custom_imports_does_not_fail():
    from mmengine.utils import import_modules_from_strings

    import mmpvt.registry
    importlib.reload(mmpvt.registry)
    import_modules_from_strings(['mmpvt'], allow_failed_imports=False)
    from mmdet.registry import MODELS
    assert MODELS.get('mmpvt.PVT').__name__ == 'PVT'
    assert mmpvt.__version__


def test_import_mmpvt_adds_checkpoint_loaders_through_mmengines_registry_and_replaces_nothing():
    import mmengine.runner.checkpoint as mmengine_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmengine.utils.dl_utils import load_url

    from mmpvt import safe_load  # imports mmpvt
    assert mmengine_checkpoint.load_url is load_url  # mmengine's own function, untouched
    for prefixes, loader in safe_load.SCHEMES.items():
        for prefix in (prefixes if isinstance(prefixes, tuple) else (prefixes, )):
            assert CheckpointLoader._schemes[prefix] is loader, prefix
