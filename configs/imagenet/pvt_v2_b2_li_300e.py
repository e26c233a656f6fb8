# PVTv2-B2-Li on ImageNet-1K, 300 epochs, as the authors' pvt_v2_b2_li
# (top-1 82.1 %, 22,553,512 parameters).
# The recipe is ../_base_/imagenet_pvt_300e.py; this file sets the model and its drop path.
_base_ = '../_base_/imagenet_pvt_300e.py'

# The last stage's map (B, 512, 7, 7), averaged over its positions (the authors' token mean), into
# the classifier.
model = dict(
    backbone=dict(type='mmpvt.PVTv2', arch='b2_li', out_indices=(3, ), drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'), head=dict(in_channels=512))
