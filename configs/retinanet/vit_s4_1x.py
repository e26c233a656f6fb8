# RetinaNet + ViT-Small/4, 1x schedule: the paper's Table 8 (60.9M params; out of memory on a 32 GB
# GPU: at 800x1333, 66.6k tokens make one fp32 attention map of about 142 GB). vit_s32_1x.py with
# patch 4: the layers' maps are at stride 4 and are resized down to 8, 16, 32.
_base_ = './vit_s32_1x.py'
model = dict(backbone=dict(vit=dict(patch_size=4)))
