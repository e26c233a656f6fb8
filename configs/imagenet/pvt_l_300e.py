# PVT-Large on ImageNet-1K, 300 epochs, as the authors' pvt_large
# (top-1 81.7 %, 61,369,320 parameters).
# The recipe is ../_base_/imagenet_pvt_300e.py; this file sets the model, drop path and clipping.
# The released PVT-M/L weights were likely trained with the authors' first recipe instead (no drop
# path for 100 epochs, then 0.1; PVT-L diverged with 0.1 from the start): docs/classification.md.
_base_ = '../_base_/imagenet_pvt_300e.py'

# The class token after the last stage's final LayerNorm, (B, 512), straight into the classifier
# (no pooling, no neck), as the authors' head reads it.
model = dict(
    backbone=dict(type='mmpvt.PVT', arch='large', out_type='cls_token', drop_path_rate=0.3),
    neck=None, head=dict(in_channels=512))
optim_wrapper = dict(clip_grad=dict(max_norm=1.0))  # L2 norm, after unscaling
