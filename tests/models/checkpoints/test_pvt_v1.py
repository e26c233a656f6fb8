"""Specification of PVT v1's checkpoint layouts (mmpvt.families.pvt_v1) beyond what
every layout shares (test_convert.py, test_loading.py): the export to the official layout."""
import pytest
import torch

from mmpvt.families.pvt_v1 import mmpvt_to_official
from mmpvt.models import PVT
from ...helpers import V1_ARCHS, meta_backbone, release_backbone_shapes, shapes


@pytest.mark.parametrize('arch', V1_ARCHS)
def test_export_to_official_layout_gives_the_release_keys_and_shapes(arch):
    exported = mmpvt_to_official(meta_backbone(arch).state_dict())
    assert shapes(exported) == release_backbone_shapes(arch)


def test_export_gives_the_last_position_table_back_a_zero_class_token_row():
    """So that mmdet's pvt_convert and the official code read it as a release checkpoint."""
    sd = PVT('tiny').state_dict()
    table = mmpvt_to_official(sd)['pos_embed4']
    assert torch.equal(table[:, 0], torch.zeros(1, 512))
    assert torch.equal(table[:, 1:], sd['stages.3.pos_embed'])
