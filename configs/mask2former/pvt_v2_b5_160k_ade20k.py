# Mask2Former + PVTv2-B5, ADE20K semantic segmentation: ./pvt_v2_b2_160k_ade20k.py with the B5
# backbone; same channels (64-512).
_base_ = './pvt_v2_b2_160k_ade20k.py'

model = dict(
    backbone=dict(
        arch='b5', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b5.pth')))
# B5's LayerNorms: no weight decay (../_base_/pvt_v2_mask2former_norms.py)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.pvt_v2_b5_norm_keys}}))
