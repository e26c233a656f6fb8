"""Specification of mmpvt.AlignResize, the authors' Semantic FPN test-time resize.

Expected sizes are computed by hand: rescale by s = min(2048 / long side, 512 / short side),
round each side with int(x * s + 0.5) (mmcv's rule), then round each side *up* to a multiple of 32.
"""
import numpy as np
import pytest

from mmpvt.datasets import AlignResize


@pytest.mark.parametrize(
    'hw,expected',
    [
        ((375, 500), (512, 704)),  # s = 512/375: 512 x 683 -> 683 up to 704
        ((512, 683), (512, 704)),  # s = 1: only the alignment
        ((300, 1000), (512, 1728)),  # s = 512/300: 512 x 1707 -> 1728
        ((1000, 200), (2048, 416)),  # s = 2048/1000 (long side binds): 2048 x 410 -> 416
        ((33, 47), (512, 736)),  # s = 512/33: 512 x 729 -> 736
        ((512, 512), (512, 512)),  # already aligned: untouched
    ])
def test_sizes_are_rescaled_then_resized_up_to_multiples_of_32(hw, expected):
    t = AlignResize(scale=(2048, 512), keep_ratio=True, size_divisor=32)
    out = t(dict(img=np.zeros((*hw, 3), np.uint8)))
    assert out['img'].shape[:2] == expected and out['img_shape'] == expected
    assert out['scale_factor'] == pytest.approx((expected[1] / hw[1], expected[0] / hw[0]))


def test_segmentation_maps_follow_with_nearest_interpolation():
    seg = np.zeros((375, 500), np.uint8)
    seg[:, 250:] = 7
    out = AlignResize(scale=(2048, 512))(
        dict(img=np.zeros((375, 500, 3), np.uint8), gt_seg_map=seg, seg_fields=['gt_seg_map']))
    assert out['gt_seg_map'].shape == (512, 704)
    assert set(np.unique(out['gt_seg_map'])) == {0, 7}  # no interpolated labels


def test_image_content_is_resized_not_padded():
    img = np.full((375, 500, 3), 200, np.uint8)
    out = AlignResize(scale=(2048, 512))(dict(img=img))
    assert out['img'][:, -1].min() == 200  # the added columns are image, not zero padding


@pytest.mark.parametrize('kwargs,message', [(dict(keep_ratio=False), 'keep_ratio'),
                                            (dict(size_divisor=0), 'size_divisor')])
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AlignResize(scale=(2048, 512), **kwargs)


@pytest.mark.slow  # builds a segmentor and a dataset
def test_sem_fpn_test_run_on_demo_data_aligns_and_predicts_at_the_original_size(
        tiny_shapes, monkeypatch):
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS

    from ..helpers import REPO
    monkeypatch.setenv('MMPVT_DEMO_DATA', f'{tiny_shapes}/')
    cfg = Config.fromfile(f'{REPO}/configs/demo/sem_fpn_pvt_t.py')
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert pipeline[1].type == 'mmpvt.AlignResize'
    pipeline[1].scale = (240, 180)  # 96x128 images: x1.875 -> 180x240 -> resized up to 192x256
    init_default_scope('mmseg')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    assert [tuple(x.shape) for x in batch['inputs']] == [(3, 192, 256)] * 2
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    with torch.no_grad():
        results = model.test_step(batch)
    assert [tuple(r.pred_sem_seg.shape) for r in results] == [(96, 128)] * 2
