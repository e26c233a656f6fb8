"""Specification of the ViT-to-pyramid adapter (mmpvt.models.vit_pyramid): the maps of
a columnar network resized to the given strides by interpolation alone. The ViT-Small RetinaNet
configs built on it (Table 8) are checked in tests/test_configs.py; here a PVT-T's last map
stands in for a ViT's (any network returning (B, C, h, w) maps will do)."""
import pytest
import torch
import torch.nn.functional as F

from mmpvt.models import PVT, ViTPyramid
from ...helpers import parameter_count

ONE_MAP = dict(type='mmpvt.PVT', arch='tiny', out_indices=(3, ), drop_path_rate=0.0)


def test_the_adapter_adds_no_parameters():
    model = ViTPyramid(ONE_MAP, strides=(4, ))
    assert parameter_count(model) == parameter_count(model.vit) == parameter_count(PVT('tiny'))


@pytest.mark.parametrize('hw', [(64, 96), (70, 100)], ids=['divisible', 'not-divisible'])
def test_each_map_is_its_bilinear_resize_to_the_stride(hw):
    model = ViTPyramid(ONE_MAP, strides=(4, )).eval()
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        (out, ) = model(x)
        (stride32, ) = model.vit(x)
    h, w = (-(-s // 4) for s in hw)  # ceil(H / 4), ceil(W / 4)
    assert out.shape == (1, 512, h, w)
    expected = F.interpolate(stride32, size=(h, w), mode='bilinear', align_corners=False)
    assert torch.equal(out, expected)


def test_a_map_already_at_its_stride_is_passed_through():
    model = ViTPyramid(ONE_MAP, strides=(32, )).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model(x)[0], model.vit(x)[0])


def test_a_stride_per_map_is_required():
    model = ViTPyramid(ONE_MAP, strides=(4, 8))
    with pytest.raises(ValueError, match=r'the ViT returned 1 maps for 2 strides \(4, 8\)'):
        model(torch.randn(1, 3, 64, 64))


def test_strides_must_be_positive_integers():
    with pytest.raises(ValueError, match=r'strides must be positive integers, got \(4, 0\)'):
        ViTPyramid(ONE_MAP, strides=(4, 0))
