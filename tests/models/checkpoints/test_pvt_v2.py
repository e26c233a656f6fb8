"""Specification of PVTv2's checkpoint layouts (mmpvt.families.pvt_v2) beyond what
every layout shares (test_convert.py, test_loading.py): the export to the official layout and
transformers' separate key and value projections."""
import pytest

from mmpvt.families import convert_to_mmpvt
from mmpvt.families.pvt_v2 import mmpvt_to_official
from mmpvt.models import CheckpointMismatchError, PVTv2
from mmpvt.models.checkpoints import check_state_dict
from ...helpers import V2_ARCHS, meta_backbone, official_weights, release_backbone_shapes, shapes
from ..reference_layouts import transformers_layout


@pytest.mark.parametrize('arch', V2_ARCHS)
def test_export_to_official_layout_gives_the_release_keys_and_shapes(arch):
    exported = mmpvt_to_official(meta_backbone(arch).state_dict())
    assert shapes(exported) == release_backbone_shapes(arch)


def test_transformers_key_and_value_are_stacked_key_first():
    official = official_weights('b0')
    converted = convert_to_mmpvt(transformers_layout(official)).state_dict
    assert converted['stages.1.blocks.0.attn.kv.weight'].equal(official['block2.0.attn.kv.weight'])


def test_transformers_value_without_its_key_is_reported_not_dropped():
    sd = transformers_layout(official_weights('b0'))
    del sd['pvt_v2.encoder.layers.0.blocks.0.attention.key.weight']
    with pytest.raises(
            CheckpointMismatchError, match=r'(?s)missing from the checkpoint: '
            r'stages\.0\.blocks\.0\.attn\.kv\.weight.*unexpected keys in the '
            r'checkpoint: stages\.0\.blocks\.0\.attention\.value\.weight'):
        check_state_dict(convert_to_mmpvt(sd).state_dict, PVTv2('b0'))
