# Sparse R-CNN + PVTv2-B2-Li, 300 proposals, multi-scale + crop, 3x (authors' README: 48.9 box AP).
# Unlike their b2 config, the authors' b2_li one keeps 2 images per GPU and lr 2.5e-5.
_base_ = './pvt_v2_b2_3x_ms.py'
model = dict(
    backbone=dict(
        arch='b2_li', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b2_li.pth')))
train_dataloader = dict(batch_size=2, num_workers=2)
optim_wrapper = dict(optimizer=dict(lr=2.5e-5))
auto_scale_lr = dict(base_batch_size=16)
