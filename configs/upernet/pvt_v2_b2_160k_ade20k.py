# UperNet + PVTv2-B2, ADE20K, 160k iterations at 512x512: mmseg's recipe for transformer
# backbones in UperNet (its Swin-T config: 8 GPUs x 2 images, AdamW lr 6e-5 and weight decay
# 0.01, no decay on norms, 1500 warm-up iterations, then poly with power 1; auxiliary FCN head on
# stage 3) with Swin-T swapped for PVTv2-B2 from the authors' ImageNet weights.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

model = dict(
    pretrained=None, backbone=dict(
        _delete_=True, type='mmpvt.PVTv2', arch='b2', drop_path_rate=0.1, init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2.pth')),
    decode_head=dict(in_channels=[64, 128, 320, 512]), auxiliary_head=dict(in_channels=320))
