# RetinaNet + ViT-Small/32, 1x schedule: the paper's Table 8 baseline (60.8M params, 31.7 AP).
# ViT-Small as the paper has it (embed 768, 8 layers, 8 heads, MLP 2304, no qkv bias: mmpretrain's
# arch 'small'), patch 32; the features of layers 2, 4, 6 and 8 are interpolated without
# parameters to strides 4, 8, 16, 32 (mmpvt.ViTPyramid), then the same FPN and RetinaNet head as
# pvt_s_1x.py, with its schedule and data. Needs mmpretrain.
# No ImageNet weights of ViT-S/32 are published: the backbone starts from mmpretrain's random
# init unless you set model.backbone.vit.init_cfg=dict(type='Pretrained', checkpoint=...).
_base_ = './pvt_s_1x.py'
custom_imports = dict(imports=['mmpvt', 'mmpretrain.models'], allow_failed_imports=False)
patch_size = 32
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpvt.ViTPyramid',
        vit=dict(
            type='mmpretrain.VisionTransformer',
            arch='small',
            img_size=224,  # position table of the 224 px classifier, resized per input
            patch_size=patch_size,
            out_indices=(1, 3, 5, 7),  # layers 2, 4, 6, 8
            qkv_bias=False,
            drop_path_rate=0.1,  # as pvt_s_1x.py (the paper gives none for ViT)
            out_type='featmap'),
        strides=(4, 8, 16, 32)),
    neck=dict(in_channels=[768, 768, 768, 768]))
