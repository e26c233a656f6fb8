# Mask R-CNN + PVTv2-B2-Li (linear SRA), 3x multi-scale + crop (authors'
# mask_rcnn_pvt_v2_b2_li_fpn_3x_mstrain.py; their README: no result reported for this config).
_base_ = './pvt_v2_b2_3x_ms.py'
model = dict(
    backbone=dict(
        arch='b2_li', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2_li.pth')))

# The authors' b2_li Mask R-CNN 3x config trains with fp16 (apex); mmengine AMP here.
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
