# The authors' ImageNet-1K recipe for PVT and PVTv2 (whai362/PVT classification/main.py, timm
# 0.3.2), shared by every configs/imagenet/*_300e.py; the variant files set the backbone, the
# head's input width, drop path and gradient clipping. 300 epochs, 8 GPUs x 128 images.
# Where mmpretrain 1.2.0 / mmengine cannot say exactly what the authors' code does, the entry
# says what we chose and why (docs/classification.md has the whole comparison).
_base_ = [
    # RandomResizedCrop 224 bicubic, flip 0.5, RandAugment rand-m9-mstd0.5-inc1, RandomErasing
    # 0.25; test: short side 256 bicubic, centre crop 224; Accuracy top-1/top-5. That is the
    # authors' pipeline (timm's colour jitter 0.4 is unused there, as RandAugment is on).
    # Differences: images decoded by OpenCV, not PIL; RandomErasing draws its per-pixel normal
    # noise on uint8 pixels before normalisation (clipped to 0..255), timm after it (unclipped).
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmpvt'], allow_failed_imports=False)

# ImageNet mean / std in RGB order on 0..255 pixels (the authors' torchvision Normalize).
data_preprocessor = dict(type='ClsDataPreprocessor', num_classes=1000,
                         mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

model = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    # backbone and neck: the variant files
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        # timm's SoftTargetCrossEntropy on targets that Mixup smoothed by 0.1: the same loss
        # (smoothing the mixed target equals mixing the smoothed targets)
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        # the authors initialise every Linear layer, the classifier included, this way
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
        cal_acc=False),
    # timm Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode='batch'):
    # RandomBatchAugment picks one of the two per batch, uniformly. The image each one is mixed
    # with comes from a random permutation of the batch (timm: the flipped batch).
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8),
                             dict(type='CutMix', alpha=1.0)]),
)

# 8 GPUs x 128 images (the authors' dist_train.sh); repeated augmentation, 3 repeats. mmpretrain's
# RepeatAugSampler gives each GPU ceil(N / GPUs) of the repeated samples per epoch; the authors'
# RASampler floor(N // 256 * 256 / GPUs) (1,281,024 instead of 1,281,167 images an epoch).
train_dataloader = dict(
    batch_size=128, sampler=dict(_delete_=True, type='RepeatAugSampler', num_repeats=3,
                                 shuffle=True))
# the authors evaluate with 1.5x the training batch, every image once (no distributed eval)
val_dataloader = dict(batch_size=192)
test_dataloader = val_dataloader

# AdamW, lr 5e-4 x 1024 / 512 = 1e-3 for the batch of 1024 (tools/train.py --auto-scale-lr
# rescales it for another one), betas (0.9, 0.999), eps 1e-8, weight decay 0.05. AMP with a
# dynamic loss scale (the authors' torch.cuda.amp + NativeScaler); no gradient clipping
# unless the variant file sets clip_grad.
# No weight decay, as timm's add_weight_decay: every 1-D parameter (the LayerNorm weights and
# biases: norm_decay_mult), every bias (bias_decay_mult), and what the model's no_weight_decay()
# lists: the class token of PVT v1 ('cls_token'; its position tables ARE decayed, so no
# '.pos_embed' key here, unlike mmpretrain's DeiT). mmengine gives depth-wise convolutions
# dwconv_decay_mult for weight and bias alike, so the bias of PVTv2's depth-wise convolution in
# the MLP needs its own key; its weight (4-D) is decayed. A key that names no parameter of the
# model (cls_token in PVTv2) changes nothing.
optim_wrapper = dict(
    type='AmpOptimWrapper', loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, eps=1e-8,
                   betas=(0.9, 0.999)), paramwise_cfg=dict(
                       norm_decay_mult=0.0, bias_decay_mult=0.0, custom_keys={
                           'cls_token': dict(decay_mult=0.0),
                           '.dwconv.bias': dict(decay_mult=0.0),
                       }))

# The authors' schedule: timm's CosineLRScheduler(t_initial=300, lr_min=1e-5, warmup_t=5,
# warmup_lr_init=1e-6), stepped once per epoch with step(epoch) after the epoch. Epochs 0 and 1
# therefore run at 1e-6, epoch e >= 1 at value(e - 1): 2.008e-4 in epoch 2, ..., 8.002e-4 in
# epoch 5, then the cosine over 300 epochs. mmengine, stepping per epoch too:
#   epoch 0: ConstantLR x1e-3 (= 1e-6); it restores the lr at epoch 1, where LinearLR starts at
#   x1e-3 again and rises linearly to the full lr at epoch 6: epochs 0-5 are the authors' values
#   exactly; epoch 6 runs at 1e-3 (authors: 9.993e-4);
#   epochs 6-299: CosineAnnealingLR from 1e-3 to eta_min 1e-5 over the 294 remaining epochs.
#   mmengine's cosine has no phase offset, so it cannot continue the authors' curve, which
#   started at epoch 0 (cos(pi * (e - 1) / 300)); the largest gap is 1.4e-5 (1.4 % of the peak lr,
#   around epoch 99), and the last epochs run at 1e-5 + O(1e-7) in both.
# The warm-up values are factors of the (possibly auto-scaled) lr, the authors' 1e-6 an absolute
# value; at the batch of 1024 the two are the same.
param_scheduler = [
    dict(type='ConstantLR', factor=1e-3, by_epoch=True, begin=0, end=2),
    dict(type='LinearLR', start_factor=1e-3, end_factor=1.0, by_epoch=True, begin=1, end=7),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=6, end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
# the authors evaluate under autocast too
val_cfg = dict(fp16=True)
test_cfg = dict(fp16=True)
auto_scale_lr = dict(base_batch_size=1024)

# Each rank draws its own random numbers (mmengine: seed + rank), as the authors seed each process
# with seed + rank: otherwise every GPU would pick the same Mixup/CutMix choice, lambda and pairing,
# and the same drop-path masks. seed=None: rank 0 draws the seed and broadcasts it.
randomness = dict(seed=None, diff_rank_seed=True)

# the authors keep one checkpoint, rewritten every epoch
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1))
