# Mask R-CNN + ResNet-50 with global context blocks (GCNet: ratio 1/4 after conv3 of every
# bottleneck in stages c3-c5), 1x schedule: the "ResNet50+GC r4" row of the paper's Table 10
# (54.2M params, 36.2 mask AP), beside configs/mask_rcnn/pvt_s_1x.py. mmdet's own config, unchanged
# (SGD 1x, BN frozen, torchvision ImageNet weights); mmdet reports 39.9 box / 36.0 mask AP for it.
_base_ = 'mmdet::gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)
