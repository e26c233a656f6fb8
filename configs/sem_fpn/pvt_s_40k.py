# Semantic FPN + PVT-Small on ADE20K, the authors' released 40k recipe (fpn_pvt_s_ade20k_40k.py;
# their README: 41.9 mIoU). Settings as pvt_t_40k.py.
_base_ = './pvt_t_40k.py'
model = dict(
    backbone=dict(
        arch='small', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_small.pth')))
