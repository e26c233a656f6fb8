# PVTv2-B0 on ImageNet-1K, 300 epochs, as the authors' pvt_v2_b0
# (top-1 70.5 %, 3,666,760 parameters).
# The recipe is ../_base_/imagenet_pvt_300e.py; this file sets the model and its drop path.
_base_ = '../_base_/imagenet_pvt_300e.py'

# The last stage's map (B, 256, 7, 7), averaged over its positions (the authors' token mean), into
# the classifier.
model = dict(
    backbone=dict(type='mmpvt.PVTv2', arch='b0', out_indices=(3, ), drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'), head=dict(in_channels=256))
