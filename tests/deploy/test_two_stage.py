"""The numpy pieces of the two-stage ONNX path (mmpvt_runtime.boxes, mmpvt_runtime.two_stage)
against the mmcv / mmdet functions they reproduce, and the RoiAlign node against mmcv's
RoIAlign."""
import numpy as np
import pytest
import torch

from mmpvt_runtime.boxes import batched_nms
from mmpvt_runtime.two_stage import map_roi_levels, paste_masks


def _random_boxes(n, size, seed):
    rng = np.random.RandomState(seed)
    xy = rng.rand(n, 2) * size
    wh = rng.rand(n, 2) * size / 3
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def assert_decided_with_margin(boxes, scores, idxs, iou_threshold, margin=1e-4):
    """The input leaves NMS no near-tie to decide: scores at least 1e-6 apart and no IoU within
    the same group within `margin` of the threshold (in float64). Float32 rounding differs
    between CPUs; with such a margin it can change neither an order nor a suppression."""
    assert np.diff(np.sort(scores.astype(np.float64))).min() > 1e-6
    b = boxes.astype(np.float64)
    lt, rb = np.maximum(b[:, None, :2], b[None, :, :2]), np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = (b[:, 2:] - b[:, :2]).prod(-1)
    iou = inter / (area[:, None] + area[None, :] - inter)
    same_group = idxs[:, None] == idxs[None, :]
    assert np.abs(iou[same_group] - iou_threshold).min() > margin


def test_roi_levels_equal_mmdets_single_roi_extractor():
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    extractor = SingleRoIExtractor(
        dict(type='RoIAlign', output_size=7, sampling_ratio=0), out_channels=8,
        featmap_strides=[4, 8, 16, 32])
    # sqrt(area) on both sides of each level boundary 56 * 2^k, plus random boxes
    edges = np.array([[0, 0, s, s] for s in (10, 111.9, 112.1, 223.9, 224.1, 447, 449, 900)],
                     np.float32)
    boxes = np.concatenate([edges, _random_boxes(500, 800, 0)])
    rois = torch.cat([torch.zeros(len(boxes), 1), torch.from_numpy(boxes)], dim=1)
    expected = extractor.map_roi_levels(rois, 4).numpy()
    np.testing.assert_array_equal(map_roi_levels(boxes, 56, 4), expected)
    np.testing.assert_array_equal(expected[:8], [0, 0, 1, 1, 2, 2, 3, 3])  # the hand count
    # no box within float32 rounding of a level boundary (rounding differs between CPUs)
    scale = np.sqrt(np.prod(boxes[:, 2:].astype(np.float64) - boxes[:, :2], axis=1))
    level = np.log2(scale / 56 + 1e-6)
    assert np.abs(level - np.round(level)).min() > 1e-4


@pytest.mark.parametrize('n,split_thr', [(300, 10000), (300, 100)])
def test_batched_nms_equals_mmcv_below_and_above_split_thr(n, split_thr):
    from mmcv.ops import batched_nms as mmcv_batched_nms
    boxes = _random_boxes(n, 200, 1)
    scores = np.random.RandomState(2).rand(n).astype(np.float32)
    idxs = np.random.RandomState(3).randint(0, 4, n)
    _, expected = mmcv_batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs),
        dict(type='nms', iou_threshold=0.5, split_thr=split_thr))
    got = batched_nms(boxes, scores, idxs, 0.5, split_thr=split_thr)
    assert 0 < len(got) < n  # something was suppressed
    assert_decided_with_margin(boxes, scores, idxs, 0.5)
    np.testing.assert_array_equal(got, expected.numpy())


def test_paste_masks_equals_mmdets_fcn_mask_head_on_cpu():
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    from mmengine.config import ConfigDict
    rng = np.random.RandomState(4)
    logits = rng.randn(6, 3, 28, 28).astype(np.float32) * 3
    labels = np.array([0, 1, 2, 0, 1, 2])
    boxes = np.array(
        [
            [3.2, 5.7, 40.1, 30.5],
            [0, 0, 95, 63],
            [50.5, 10, 51.5, 60],
            [10, 10, 10, 20],  # no width: mmdet maps the infinite grid to 0
            [60, 2, 96, 64],
            [-5, -3, 20, 15]
        ],
        np.float32)
    h, w = 64, 96
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')  # FCNMaskHead builds its loss from the registry
    head = FCNMaskHead(num_convs=0, in_channels=8, conv_out_channels=8, num_classes=3)
    expected = head._predict_by_feat_single(
        torch.from_numpy(logits), torch.from_numpy(boxes.copy()), torch.from_numpy(labels),
        dict(scale_factor=(1.0, 1.0), ori_shape=(h, w)), ConfigDict(mask_thr_binary=0.5),
        rescale=True).numpy()
    probs = 1 / (1 + np.exp(-logits[np.arange(6), labels]))
    got = paste_masks(probs, boxes, (h, w), 0.5)
    assert got.shape == (6, h, w) and expected.any()
    # Bilinear sampling by matrix products rounds differently from grid_sample: at most a
    # pixel whose value is within float32 noise of the threshold may flip.
    assert (got != expected).sum() <= 2, (got != expected).sum()
    assert paste_masks(probs[:0], boxes[:0], (h, w), 0.5).shape == (0, h, w)


def test_roi_align_node_equals_mmcv_roi_align_in_onnxruntime(tmp_path):
    import onnxruntime as ort
    from mmcv.ops import roi_align

    from mmpvt.deploy.export import export_onnx
    from mmpvt.deploy.two_stage import RoIAlignFunction

    class Pool(torch.nn.Module):

        def forward(self, feat, rois):
            return RoIAlignFunction.apply(feat, rois, (7, 7), 0.25, 0)

    torch.manual_seed(0)
    feat = torch.randn(1, 8, 40, 50)
    rois = torch.cat([torch.zeros(60, 1), torch.from_numpy(_random_boxes(60, 180, 5))], dim=1)
    rois[:3, 3:] = rois[:3, 1:3] + 0.3  # boxes smaller than a pixel (aligned: no 1-pixel floor)
    path = export_onnx(Pool(), (feat, rois[:5]), str(tmp_path / 'roi.onnx'), ['feat', 'rois'],
                       ['pooled'], {
                           'feat': {
                               2: 'h',
                               3: 'w'
                           },
                           'rois': {
                               0: 'n'
                           }
                       }, opset=17)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for f, r in ((feat, rois), (feat[..., :33, :21].contiguous(), rois[:7]), (feat, rois[:0])):
        expected = roi_align(f, r, (7, 7), 0.25, 0, 'avg', True).numpy()
        got = session.run(None, {'feat': f.numpy(), 'rois': r.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_roi_align_export_form_refuses_a_backward_naming_what_to_train_with():
    from mmpvt.deploy.two_stage import RoIAlignFunction

    feat = torch.randn(1, 4, 16, 16, requires_grad=True)
    rois = torch.tensor([[0.0, 1.0, 1.0, 30.0, 30.0]])
    pooled = RoIAlignFunction.apply(feat, rois, (2, 2), 0.25, 0)
    with pytest.raises(
            RuntimeError, match=r'export form of mmcv RoIAlign and has no backward; '
            r'train with the detector itself'):
        pooled.sum().backward()
