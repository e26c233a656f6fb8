# Demo: retinanet_pvt_v2_b0_quick.py with its backbone started from the shape classifier of
# cls_pvt_v2_b0.py: the "pretrained" curve of `python tools/demo.py --figure5` (the paper's
# Figure 5 in miniature, the classifier standing in for ImageNet).
# The classifier's checkpoint: $MMPVT_DEMO_BACKBONE if set, else the one
# `python tools/demo.py --config configs/demo/cls_pvt_v2_b0.py` writes (--figure5 trains it
# first if it is missing and passes its path). Its 'backbone.' entries are the backbone's
# weights, loaded strictly; its head is not used.
_base_ = './retinanet_pvt_v2_b0_quick.py'

model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', prefix='backbone.',
                      checkpoint='{{$MMPVT_DEMO_BACKBONE:work_dirs/cls_pvt_v2_b0/epoch_10.pth}}')))
