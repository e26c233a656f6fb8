# Demo: RetinaNet + PVTv2-B0 from scratch, the quick schedule, validated after every epoch: the
# "random init" curve of `python tools/demo.py --figure5` (the paper's Figure 5 in miniature).
# retinanet_pvt_t_quick.py (160 px, batch 4, GroupNorm in neck and head, fixed seed) with
#   - the backbone swapped for PVTv2-B0 (as retinanet_pvt_v2_b0.py does for the 256 px run);
#   - validation after every epoch, so that vis_data/scalars.json holds a curve (tools/demo.py
#     switches it off unless --figure5 asks for it).
#   python tools/demo.py --config configs/demo/retinanet_pvt_v2_b0_quick.py
_base_ = './retinanet_pvt_t_quick.py'

model = dict(
    backbone=dict(_delete_=True, type='mmpvt.PVTv2', arch='b0', drop_path_rate=0.1, init_cfg=None),
    neck=dict(in_channels=[32, 64, 160, 256]))

train_cfg = dict(val_interval=1)
