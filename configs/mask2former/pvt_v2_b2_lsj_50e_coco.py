# Mask2Former + PVTv2-B2, COCO instance segmentation, 50 epochs of large-scale jitter (1024x1024
# crops): mmdet's own recipe (8 GPUs x 2 images, AdamW lr 1e-4 and weight decay 0.05, backbone lr
# x0.1, no decay on norms and query/level embeddings, clipping 0.01) with the ResNet-50 swapped
# for PVTv2-B2 from the authors' ImageNet weights; all four stages (strides 4-32) feed the pixel
# decoder, as Swin's do in mmdet's Mask2Former configs.
_base_ = [
    'mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py',
    '../_base_/pvt_v2_mask2former_norms.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    panoptic_head=dict(in_channels=[64, 128, 320, 512]))
# The stock recipe's intent, no decay on norms, for PVTv2's LayerNorms too
# (../_base_/pvt_v2_mask2former_norms.py).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.pvt_v2_b2_norm_keys}}))
