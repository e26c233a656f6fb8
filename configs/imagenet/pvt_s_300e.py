# PVT-Small on ImageNet-1K, 300 epochs, as the authors' pvt_small
# (top-1 79.8 %, 24,485,864 parameters).
# The recipe is ../_base_/imagenet_pvt_300e.py; this file sets the model and its drop path.
_base_ = '../_base_/imagenet_pvt_300e.py'

# The class token after the last stage's final LayerNorm, (B, 512), straight into the classifier
# (no pooling, no neck), as the authors' head reads it.
model = dict(
    backbone=dict(type='mmpvt.PVT', arch='small', out_type='cls_token', drop_path_rate=0.1),
    neck=None, head=dict(in_channels=512))
