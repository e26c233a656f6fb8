# PVTv2-B5 on ImageNet-1K, 300 epochs, as the authors' pvt_v2_b5
# (top-1 83.8 %, 81,956,008 parameters).
# The recipe is ../_base_/imagenet_pvt_300e.py; this file sets the model, drop path and clipping.
_base_ = '../_base_/imagenet_pvt_300e.py'

# The last stage's map (B, 512, 7, 7), averaged over its positions (the authors' token mean), into
# the classifier.
model = dict(
    backbone=dict(type='mmpvt.PVTv2', arch='b5', out_indices=(3, ), drop_path_rate=0.3),
    neck=dict(type='GlobalAveragePooling'), head=dict(in_channels=512))
optim_wrapper = dict(clip_grad=dict(max_norm=1.0))  # L2 norm, after unscaling
