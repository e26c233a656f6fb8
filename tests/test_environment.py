"""The installed stack: pinned versions and mmcv's compiled ops."""
from importlib.metadata import version

import torch


def test_pinned_versions():
    assert version('torch').split('+')[0] == '2.13.0'
    assert version('mmengine') == '0.10.7'
    assert version('mmcv') == '2.1.0'
    assert version('mmdet') == '3.3.0'
    assert version('mmsegmentation') == '1.2.2'


def test_mmcv_compiled_nms_runs():
    from mmcv.ops import nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert dets.shape == (2, 5)


def test_mmcv_compiled_roi_align_runs():
    from mmcv.ops import RoIAlign
    feats = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0, 0, 0, 4, 4]], dtype=torch.float32)
    out = RoIAlign(output_size=2, spatial_scale=1.0, sampling_ratio=1, aligned=False)(feats, rois)
    # each output bin averages one sample at its centre: (1,1)->5, (1,3)->7, (3,1)->13, (3,3)->15
    assert out.flatten().tolist() == [5.0, 7.0, 13.0, 15.0]
