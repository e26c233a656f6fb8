# Demo: RetinaNet + PVTv2-B0 whose backbone starts from the shape classifier of cls_pvt_v2_b0.py
# instead of random weights: the ImageNet-pretraining recipe of the paper, in miniature. Train the
# classifier first, then this detector; compare its AP with retinanet_pvt_v2_b0.py (from
# scratch, same schedule):
#   python tools/demo.py --config configs/demo/cls_pvt_v2_b0.py
#   python tools/demo.py --config configs/demo/retinanet_pvt_v2_b0_from_cls.py
# The classifier's checkpoint: $MMPVT_DEMO_BACKBONE if set, else the one the first command
# writes. Its 'backbone.' entries are the backbone's weights (strictly: a key or shape that does
# not fit is an error); its head is not used.
_base_ = './retinanet_pvt_v2_b0.py'

model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', prefix='backbone.',
                      checkpoint='{{$MMPVT_DEMO_BACKBONE:work_dirs/cls_pvt_v2_b0/epoch_10.pth}}')))
