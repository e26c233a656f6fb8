# Semantic FPN + PVT-Medium on ADE20K, the authors' released 40k recipe (fpn_pvt_m_ade20k_40k.py;
# their README: 43.5 mIoU). Settings as pvt_t_40k.py.
_base_ = './pvt_t_40k.py'
model = dict(
    backbone=dict(
        arch='medium', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_medium.pth')))
