# Trans2Seg + ResNet-50-d16, the baseline of paper Table 7 (39.7 mIoU; 56.1M params, 79.3
# GFLOPs at 512x512). The backbone of the original Trans2Seg: ResNet-50 with the deep stem
# (mmseg's ResNetV1c) and output stride 16 (stage 4 dilated by 2, not strided), so the tokens are
# a 32 x 32 grid of 2048 channels at the 512 crop, and the skip is stage 1 (256 channels,
# stride 4). Everything else, schedule and data included, is pvt_s_40k.py.
_base_ = './pvt_s_40k.py'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(_delete_=True, type='ResNetV1c', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  dilations=(1, 1, 1, 2), strides=(1, 2, 2, 1), norm_cfg=norm_cfg, norm_eval=False,
                  style='pytorch', contract_dilation=True,
                  init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')),
    decode_head=dict(in_channels=(256, 2048), token_grid=(32, 32)))
