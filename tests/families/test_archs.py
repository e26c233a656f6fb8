"""Specification of the variant tables (each family module's ``*_ARCHS``): which names exist
and which family each belongs to (tests/data: the official checkpoints of each family; the
paper's Tables 1 and 9)."""
import pytest

from mmpvt.families import FAMILIES, family_of
from mmpvt.families.pvt_v1 import PVT_ARCHS
from mmpvt.families.pvt_v2 import PVTV2_ARCHS
from ..helpers import UNRELEASED_ARCHS, V1_ARCHS, V2_ARCHS, by_family, family


def test_each_family_has_exactly_the_published_variants():
    # and Table 9's wider PVT-Small, which has no released weights
    unreleased = {
        name: tuple(a for a, f in UNRELEASED_ARCHS.items() if f == name)
        for name in ('PVT', 'PVTv2')
    }
    assert tuple(PVT_ARCHS) == V1_ARCHS + unreleased['PVT']
    assert tuple(PVTV2_ARCHS) == V2_ARCHS + unreleased['PVTv2']


def test_wide_small_is_pvt_s_with_stages_about_1_4x_wider_and_64_wide_heads():
    # Table 9: PVT-S (64, 128, 320, 512) with hidden dims x1.4 = 89.6, 179.2, 448, 716.8; each
    # width is the multiple of 64 nearest to that, and the heads stay 64 wide as in PVT-S
    wide, small = PVT_ARCHS['small_wide'], PVT_ARCHS['small']
    assert wide['embed_dims'] == (64, 192, 448, 704)
    assert all(
        min(range(64, 1024, 64), key=lambda w: abs(w - 1.4 * c)) == w
        for c, w in zip(small['embed_dims'], wide['embed_dims']))
    assert tuple(w // h for w, h in zip(wide['embed_dims'], wide['num_heads'])) == (64, ) * 4
    assert {k: v for k, v in wide.items() if k not in ('embed_dims', 'num_heads')} == \
        {k: v for k, v in small.items() if k not in ('embed_dims', 'num_heads')}


@pytest.mark.parametrize('name', by_family(*V1_ARCHS, *UNRELEASED_ARCHS, *V2_ARCHS))
def test_family_of_names_the_family_of_each_variant(name):
    assert family_of(name) is FAMILIES[family(name)]


def test_family_of_an_unknown_name_lists_both_families_names():
    with pytest.raises(
            ValueError, match=r"^Unknown arch 'b6': expected a PVT arch \['large', "
            r"'medium', 'small', 'small_wide', 'tiny'\] or a PVTv2 "
            r"arch \['b0', 'b1', 'b2', 'b2_li', 'b3', 'b4', 'b5'\]$"):
        family_of('b6')
