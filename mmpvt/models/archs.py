"""The variants of both families, as data: what a name such as ``'small'`` or ``'b2'`` means.

This module imports nothing, so that the backbones, the checkpoint layouts (which name the
variant a file fits) and the tools (``--arch`` choices) read the one table.

PVT v1 is Table 1 of the paper: every variant shares patch sizes, widths, heads, reduction and
expansion ratios; only the depths differ. PVTv2 is the authors' v2 release (whai362/PVT, v2
branch); b2-li is b2 with linear spatial-reduction attention.
"""
from typing import Dict

_PVT_COMMON = dict(
    embed_dims=(64, 128, 320, 512),
    num_heads=(1, 2, 5, 8),
    mlp_ratios=(8, 8, 4, 4),
    sr_ratios=(8, 4, 2, 1),
    patch_sizes=(4, 2, 2, 2),
)
PVT_ARCHS: Dict[str, dict] = {
    'tiny': dict(_PVT_COMMON, depths=(2, 2, 2, 2)),
    'small': dict(_PVT_COMMON, depths=(3, 4, 6, 3)),
    'medium': dict(_PVT_COMMON, depths=(3, 4, 18, 3)),
    'large': dict(_PVT_COMMON, depths=(3, 8, 27, 3)),
}
# The per-stage entries of a custom v1 arch dict.
PVT_ARCH_KEYS = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios', 'patch_sizes')

_V2_COMMON = dict(num_heads=(1, 2, 5, 8), sr_ratios=(8, 4, 2, 1))
_V2_WIDE = (64, 128, 320, 512)
PVTV2_ARCHS: Dict[str, dict] = {
    'b0': dict(_V2_COMMON, embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2),
               mlp_ratios=(8, 8, 4, 4)),
    'b1': dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(2, 2, 2, 2), mlp_ratios=(8, 8, 4, 4)),
    'b2': dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 4, 6, 3), mlp_ratios=(8, 8, 4, 4)),
    'b2_li': dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 4, 6, 3), mlp_ratios=(8, 8, 4, 4),
                  linear=True),
    'b3': dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 4, 18, 3), mlp_ratios=(8, 8, 4, 4)),
    'b4': dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 8, 27, 3), mlp_ratios=(8, 8, 4, 4)),
    'b5': dict(_V2_COMMON, embed_dims=_V2_WIDE, depths=(3, 6, 40, 3), mlp_ratios=(4, 4, 4, 4)),
}
PVTV2_ARCH_KEYS = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios')
PVTV2_ARCH_FLAGS = dict(linear=False)  # linear SRA in every stage (b2-li)

# family name (the backbone's registered type) -> its variants
ARCHS_BY_FAMILY: Dict[str, Dict[str, dict]] = {'PVT': PVT_ARCHS, 'PVTv2': PVTV2_ARCHS}


def family_of(arch: str) -> str:
    """'PVT' or 'PVTv2', the family a variant name belongs to; ValueError listing the names."""
    for family, archs in ARCHS_BY_FAMILY.items():
        if arch in archs:
            return family
    raise ValueError(f'Unknown arch {arch!r}: expected a PVT arch {sorted(PVT_ARCHS)} or a '
                     f'PVTv2 arch {sorted(PVTV2_ARCHS)}')
