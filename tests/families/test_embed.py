"""Specification of the patch embeddings, token <-> map reshapes and position-table resizing
(mmpvt.families: PatchEmbed in pvt_v1, OverlapPatchEmbed in pvt_v2; mmpvt.ops.shapes)."""
import pytest
import torch
import torch.nn.functional as F

from mmpvt.families.pvt_v1 import PatchEmbed
from mmpvt.families.pvt_v2 import OverlapPatchEmbed
from mmpvt.ops import map_to_tokens, resize_pos_embed, tokens_to_map


@pytest.mark.parametrize('hw', [(224, 224), (33, 47), (1, 1), (6, 5)])
def test_patch_embeddings_give_ceil_grids(hw):
    """Hand count: v1 P=4 pads to a multiple of 4; v2 (k7, s4, p3) gives (H - 1) // 4 + 1."""
    _, grid_v1 = PatchEmbed(3, 8, 4)(torch.randn(1, 3, *hw))
    _, grid_v2 = OverlapPatchEmbed(3, 8, 7, 4)(torch.randn(1, 3, *hw))
    expected = tuple((s + 3) // 4 for s in hw)
    assert grid_v1 == expected and grid_v2 == expected


@pytest.mark.parametrize('B', [1, 2])
def test_token_maps_are_channels_last_views(B):
    """Convolutions must see channels-last strides, or oneDNN copies the map to NCHW first."""
    x = torch.randn(B, 6 * 5, 16)
    grid = tokens_to_map(x, (6, 5))
    assert grid.shape == (B, 16, 6, 5) and grid.data_ptr() == x.data_ptr()
    assert grid.is_contiguous(memory_format=torch.channels_last)
    out = F.conv2d(grid, torch.randn(16, 1, 3, 3), padding=1, groups=16)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert map_to_tokens(out).is_contiguous()


def test_position_table_resize_is_bilinear_without_align_corners():
    # Hand case: a 1 x 2 table [a, b] (one channel) resized to 1 x 4. Without align_corners the
    # output samples source x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped), i.e.
    # a, 0.75a + 0.25b, 0.25a + 0.75b, b.
    a, b = 2.0, 6.0
    pos = torch.tensor([[[a], [b]]])
    out = resize_pos_embed(pos, (1, 2), (1, 4))
    assert out.flatten().tolist() == pytest.approx([a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b])


def test_position_table_resize_with_align_corners_keeps_the_end_values_on_the_corners():
    # Hand case: [a, b] resized to 1 x 4 with align_corners samples source x = i * 1 / 3, i.e.
    # a, 2a/3 + b/3, a/3 + 2b/3, b.
    a, b = 2.0, 6.0
    pos = torch.tensor([[[a], [b]]])
    out = resize_pos_embed(pos, (1, 2), (1, 4), align_corners=True)
    assert out.flatten().tolist() == pytest.approx([a, (2 * a + b) / 3, (a + 2 * b) / 3, b])
