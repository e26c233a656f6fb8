"""mmpvt_runtime on its own (no model needed): it imports without PyTorch or OpenMMLab, labels and
colours detections as mmdet's visualizer does, writes DetInferencer's prediction keys, prepares
images and turns logits into the best classes as mmpretrain does, and
tools/deploy/onnx_infer.py keeps its outputs away from the input images, names a model file it
cannot open and skips (with a line each) the images it cannot read or its graph cannot take."""
import sys

import cv2
import numpy as np
import pytest

from mmpvt_runtime import (classification, classification_json, draw_detections, label_text,
                           prediction_json, random_palette, resize_and_crop)
from mmpvt_runtime.classify import center_crop, edge_size
from ..helpers import onnx_infer, run_command, tiny_segmentation_graph


def test_runtime_imports_with_torch_blocked():
    code = "import sys; sys.modules['torch'] = None; import mmpvt_runtime"
    out = run_command([sys.executable, '-c', code], check=False)
    assert out.returncode == 0, out.stderr


def test_runtime_loads_neither_torch_nor_openmmlab_nor_mmpvt():
    code = ('import sys, mmpvt_runtime; print(sorted({m.split(".")[0] for m in sys.modules} & '
            '{"torch", "mmengine", "mmcv", "mmdet", "mmseg", "mmpretrain", "mmpvt"}))')
    assert run_command([sys.executable, '-c', code]).stdout.strip() == '[]'


def test_labels_read_class_and_percent_score_as_mmdet_writes_them():
    assert label_text(1, 0.87654, ['circle', 'square']) == 'square: 87.7'
    assert label_text(4, 0.5, ['circle']) == 'class 4: 50.0'  # no name known


def test_classes_without_a_palette_get_mmdets_random_colours():
    from mmdet.visualization import get_palette
    assert random_palette(7) == [tuple(int(v) for v in c) for c in get_palette('random', 7)]


def test_boxes_are_drawn_in_their_class_colour_above_the_score_threshold_only():
    image = np.full((120, 160, 3), 100, np.uint8)
    result = dict(
        bboxes=np.array([[10, 10, 70, 60], [80, 20, 150, 100]], np.float32),
        scores=np.array([0.9, 0.3], np.float32), labels=np.array([1, 0]))
    palette = [(0, 0, 255), (255, 0, 0)]  # RGB: class 0 blue, class 1 red
    drawn = draw_detections(image, result, ['a', 'b'], palette, score_thr=0.3)
    # box 0's left edge, below its label: red at alpha 0.8 over grey, in BGR
    np.testing.assert_allclose(drawn[45, 10], [20, 20, 224], atol=1)
    # box 1's score is not above the threshold (mmdet keeps scores > thr): nothing drawn
    assert (drawn[:, 75:] == 100).all()


def test_prediction_json_has_detinferencers_keys_and_leaves_masks_out():
    result = dict(
        bboxes=np.array([[1, 2, 3, 4]], np.float32), scores=np.array([0.5], np.float32),
        labels=np.array([2]), masks=np.ones((1, 5, 5), bool))
    assert prediction_json(result) == dict(labels=[2], scores=[0.5], bboxes=[[1, 2, 3, 4]])


def test_onnx_infer_refuses_an_out_dir_equal_to_the_input_directory(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    out = onnx_infer(tmp_path, 'model.onnx', '--out-dir', tmp_path)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f'onnx_infer: --out-dir {tmp_path} is the input directory; choose another one, the '
        'outputs would be written among your images'
    ]
    assert [p.name for p in tmp_path.iterdir()] == ['a.png']


def test_onnx_infer_refuses_to_draw_over_its_input_images(tmp_path):
    (tmp_path / 'vis').mkdir()
    cv2.imwrite(str(tmp_path / 'vis' / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    # the drawing of vis/a.png would be vis/a.png
    out = onnx_infer(tmp_path / 'vis', 'model.onnx', '--out-dir', tmp_path)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f'onnx_infer: --out-dir {tmp_path} would overwrite '
        f'{tmp_path / "vis" / "a.png"} with its drawing; choose '
        'another'
    ]


def test_onnx_infer_names_a_model_file_that_is_not_onnx_or_is_truncated(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((64, 64, 3), np.uint8))
    tiny_segmentation_graph(tmp_path / 'good.onnx', 64)
    data = (tmp_path / 'good.onnx').read_bytes()
    (tmp_path / 'cut.onnx').write_bytes(data[:len(data) // 2])
    (tmp_path / 'text.onnx').write_text('not a model\n')
    for name in ('cut.onnx', 'text.onnx'):
        out = onnx_infer(tmp_path / 'a.png', tmp_path / name, '--out-dir', tmp_path / 'out')
        assert out.returncode == 1 and 'Traceback' not in out.stderr, out.stderr
        assert out.stderr.strip().count('\n') == 0  # one line
        assert f'{tmp_path / name} is not a readable ONNX file' in out.stderr


def test_onnx_infer_skips_unreadable_files_and_sizes_a_fixed_graph_cannot_take(tmp_path):
    images = tmp_path / 'images'
    images.mkdir()
    cv2.imwrite(
        str(images / 'a_fits.png'),
        np.random.RandomState(0).randint(0, 255, (64, 64, 3), np.uint8))
    cv2.imwrite(str(images / 'b_wide.png'), np.zeros((64, 128, 3), np.uint8))  # -> 32x64 input
    (images / 'c_text.png').write_text('not an image\n')
    tiny_segmentation_graph(tmp_path / 'fixed.onnx', 64)
    out = onnx_infer(images, tmp_path / 'fixed.onnx', '--out-dir', tmp_path / 'out')
    assert out.returncode == 1 and 'Traceback' not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0] == (f'onnx_infer: skipped {images / "b_wide.png"}: the graph takes a fixed '
                        '64x64 (H x W) input, this image gives 32x64 after resizing and padding;'
                        ' export with --dynamic, or with --shape for this size')
    assert lines[1] == f'onnx_infer: skipped {images / "c_text.png"}: cannot be decoded as an image'
    assert lines[2:] == ['onnx_infer: 1 done, 2 skipped']
    assert sorted(p.name for p in (tmp_path / 'out' / 'vis').iterdir()) == ['a_fits.png']


def test_onnx_infer_checks_the_out_dir_before_any_inference(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((64, 64, 3), np.uint8))
    tiny_segmentation_graph(tmp_path / 'good.onnx', 64)
    (tmp_path / 'out').write_text('a file, not a directory\n')
    out = onnx_infer(tmp_path / 'a.png', tmp_path / 'good.onnx', '--out-dir', tmp_path / 'out')
    assert out.returncode == 1 and 'Traceback' not in out.stderr, out.stderr
    assert f'cannot write into the output directory {tmp_path / "out"}' in out.stderr


# ---- classifiers --------------------------------------------------------------------------
def test_classification_is_the_softmax_and_its_best_classes_best_first():
    logits = np.array([1.0, 3.0, 2.0, 3.0 - np.log(2.0)], np.float32)
    result = classification(logits, k=3)
    # by hand: exp = e, e^3, e^2, e^3 / 2; sum = e + 1.5 e^3 + e^2
    total = np.e + 1.5 * np.e**3 + np.e**2
    assert np.allclose(result['probs'],
                       [np.e / total, np.e**3 / total, np.e**2 / total, 0.5 * np.e**3 / total],
                       rtol=1e-6)
    assert result['labels'].tolist() == [1, 3, 2]
    assert np.allclose(result['scores'], result['probs'][[1, 3, 2]])
    assert classification(logits, k=10)['labels'].tolist() == [1, 3, 2, 0]  # at most K


def test_softmax_of_huge_logits_is_finite():
    probs = classification(np.array([1000.0, 999.0], np.float32), k=2)['probs']
    assert np.allclose(probs, [1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(1.0))], rtol=1e-6)


@pytest.mark.parametrize('hw,size', [((375, 500), (256, 341)), ((500, 375), (341, 256)),
                                     ((256, 256), (256, 256)), ((100, 30), (853, 256))])
def test_short_edge_resize_truncates_the_long_side_as_resize_edge(hw, size):
    # mmpretrain ResizeEdge(256, 'short'): long side int(256 * long / short)
    assert edge_size(*hw, 256, 'short') == size


def test_centre_crop_offsets_round_half_to_even_as_mmcv():
    image = np.arange(7 * 9).reshape(7, 9)
    # (7 - 4) / 2 = 1.5 -> 2 (Python's round), (9 - 4) / 2 = 2.5 -> 2
    assert np.array_equal(center_crop(image, (4, 4)), image[2:6, 2:6])
    assert center_crop(image, (10, 10)).shape == (7, 9)  # smaller images keep their size


def test_resize_and_crop_gives_the_test_pipelines_crop_size():
    meta = dict(
        resize=dict(type='resize_edge', scale=256, edge='short', interpolation='bicubic',
                    backend='cv2'), crop=[224, 224])
    image = np.random.RandomState(0).randint(0, 256, (300, 400, 3)).astype(np.uint8)
    assert resize_and_crop(image, meta).shape == (224, 224, 3)


def test_classification_json_has_the_inferencers_keys_and_the_top_k():
    result = classification(np.array([0.0, 2.0, 1.0], np.float32), k=2)
    got = classification_json(result, ['circle', 'square', 'triangle'])
    assert list(got) == ['pred_label', 'pred_score', 'pred_class', 'pred_scores', 'topk']
    assert (got['pred_label'], got['pred_class']) == (1, 'square')
    assert [t[:2] for t in got['topk']] == [[1, 'square'], [2, 'triangle']]
    assert got['pred_score'] == pytest.approx(max(got['pred_scores']))
