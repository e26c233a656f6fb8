"""The variants of both families, as data: what a name such as ``'small'`` or ``'b2'`` means.

This module imports nothing, so that the backbones, the checkpoint layouts (which name the
variant a file fits) and the tools (``--arch`` choices) read the one table.

PVT v1 is Table 1 of the paper: every variant shares patch sizes, widths, heads, reduction and
expansion ratios; only the depths differ. ``small_wide`` is the "Wider" PVT-Small of the
paper's Table 9 (see :data:`PVT_SMALL_WIDE`). PVTv2 is the authors' v2 release (whai362/PVT, v2
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
# Table 9's "Wider" PVT-Small: PVT-S with its hidden dimensions x1.4 (89.6, 179.2, 448, 716.8),
# 46.8M parameters as an ImageNet classifier. The exact widths were never published and no
# rounding of them gives 46.8M. We keep PVT-S's head width of 64 in every stage and round the
# number of heads (1.4, 2.8, 7, 11.2 -> 1, 3, 7, 11): widths 64, 192, 448, 704, a classifier of
# 46,383,464 parameters (0.9 % under 46.8M); depths, ratios and patch sizes are PVT-S's. Widths
# that are multiples of 64 also let a checkpoint's variant be recognised from its shapes.
# Rounding to multiples of the head counts instead (90, 180, 450, 720; heads 90 wide): 47.86M.
PVT_SMALL_WIDE = dict(_PVT_COMMON, embed_dims=(64, 192, 448, 704), num_heads=(1, 3, 7, 11),
                      depths=(3, 4, 6, 3))
PVT_ARCHS: Dict[str, dict] = {
    'tiny': dict(_PVT_COMMON, depths=(2, 2, 2, 2)),
    'small': dict(_PVT_COMMON, depths=(3, 4, 6, 3)),
    'medium': dict(_PVT_COMMON, depths=(3, 4, 18, 3)),
    'large': dict(_PVT_COMMON, depths=(3, 8, 27, 3)),
    'small_wide': PVT_SMALL_WIDE,
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
