# Demo: RetinaNet + PVTv2-B0 trained from scratch on the synthetic shapes (CPU, 2 cores).
# The PVT-T demo's data, schedule and image size, with the backbone swapped for PVTv2-B0:
#   python tools/demo.py --config configs/demo/retinanet_pvt_v2_b0.py
_base_ = './retinanet_pvt_t.py'

model = dict(
    backbone=dict(_delete_=True, type='mmpvt.PVTv2', arch='b0', drop_path_rate=0.1, init_cfg=None),
    neck=dict(in_channels=[32, 64, 160, 256]))
