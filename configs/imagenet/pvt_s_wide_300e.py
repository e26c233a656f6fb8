# The "Wider" PVT-Small of the paper's Table 9 (46.8M parameters there) on ImageNet-1K, 300 epochs:
# PVT-S with every stage x1.4 wider, trained with PVT-S's recipe (drop path 0.1, no clipping).
# The paper gives neither its exact widths nor its training settings. Our widths are 64, 192,
# 448, 704 with 64-wide heads (1, 3, 7, 11 of them): 46,383,464 parameters
# (mmpvt/families/pvt_v1.py, docs/classification.md).
_base_ = './pvt_s_300e.py'

model = dict(backbone=dict(arch='small_wide'), head=dict(in_channels=704))
