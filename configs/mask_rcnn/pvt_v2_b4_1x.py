# Mask R-CNN + PVTv2-B4, 1x schedule (authors' README: 47.5 box AP / 42.7 mask AP).
_base_ = './pvt_v2_b0_1x.py'
model = dict(
    backbone=dict(
        arch='b4', init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/whai362/PVT/releases/download/v2/pvt_v2_b4.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
)
# b4/b5: the authors train with 1 image per GPU (8 GPUs) and lr / 1.4.
train_dataloader = dict(batch_size=1, num_workers=1)
optim_wrapper = dict(optimizer=dict(lr=2e-4 / 1.4))
auto_scale_lr = dict(base_batch_size=8)
