# RetinaNet + PVT-Small-Wide, 1x schedule (paper Table 9, "Wider PVT-Small": 40.8 AP).
# PVT-Small's widths x1.4 as arch 'small_wide' (64, 192, 448, 704; see docs/classification.md for
# why these), the rest as pvt_s_1x.py. No ImageNet weights of this model were released: pretrain
# it with configs/imagenet/pvt_s_wide_300e.py first; its checkpoint's 'backbone.' part starts the
# detector (loaded strictly). Another file: --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = './pvt_s_1x.py'
model = dict(
    backbone=dict(
        arch='small_wide', init_cfg=dict(_delete_=True, type='Pretrained', prefix='backbone.',
                                         checkpoint='work_dirs/pvt_s_wide_300e/epoch_300.pth')),
    neck=dict(in_channels=[64, 192, 448, 704]))
