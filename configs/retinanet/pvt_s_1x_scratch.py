# RetinaNet + PVT-Small, 1x schedule, backbone randomly initialised instead of ImageNet-pretrained:
# the paper's Fig. 5 (top), 1x curves (pretrained 40.4 AP; random init 13.8 AP lower, about 26.6).
# The init is the authors' (trunc-normal 0.02 linears and position tables, unit LayerNorms, PyTorch
# default convolutions); the paper does not say that the schedule or lr changed, so both are
# pvt_s_1x.py's. Validation runs after every epoch (coco/bbox_mAP in vis_data/scalars.json), which
# tools/plot_curves.py draws against the pretrained run.
_base_ = './pvt_s_1x.py'
model = dict(backbone=dict(init_cfg=None))
