# ATSS + PVTv2-B2-Li (linear SRA), 3x multi-scale + crop (authors'
# atss_pvt_v2_b2_li_fpn_3x_mstrain_fp16.py; their README: 48.9 box AP).
_base_ = './pvt_v2_b2_3x_ms.py'
model = dict(
    backbone=dict(
        arch='b2_li', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2_li.pth')))
