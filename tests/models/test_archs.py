"""Specification of the variant tables (mmpvt.models.archs): which names exist and which family
each belongs to (PVT paper Table 1; the PVTv2 release)."""
import pytest

from mmpvt.models import PVT_ARCHS, PVTV2_ARCHS, family_of

from ..helpers import V1_ARCHS, V2_ARCHS, by_family, family


def test_each_family_has_exactly_the_published_variants():
    assert (tuple(PVT_ARCHS), tuple(PVTV2_ARCHS)) == (V1_ARCHS, V2_ARCHS)


@pytest.mark.parametrize('name', by_family(*V1_ARCHS, *V2_ARCHS))
def test_family_of_names_the_family_of_each_variant(name):
    assert family_of(name) == family(name)


def test_family_of_an_unknown_name_lists_both_families_names():
    with pytest.raises(ValueError, match=r"^Unknown arch 'b6': expected a PVT arch \['large', "
                                         r"'medium', 'small', 'tiny'\] or a PVTv2 arch \['b0', "
                                         r"'b1', 'b2', 'b2_li', 'b3', 'b4', 'b5'\]$"):
        family_of('b6')
