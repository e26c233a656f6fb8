"""mmpvt_runtime on its own (no model needed): it imports without PyTorch or OpenMMLab, labels and
colours detections as mmdet's visualizer does, writes DetInferencer's prediction keys, and
tools/deploy/onnx_infer.py keeps its outputs away from the input images."""
import sys

import cv2
import numpy as np

from mmpvt_runtime import draw_detections, label_text, prediction_json, random_palette

from ..helpers import run_tool


def test_runtime_imports_with_torch_blocked():
    code = "import sys; sys.modules['torch'] = None; import mmpvt_runtime"
    out = run_tool([sys.executable, '-c', code], check=False)
    assert out.returncode == 0, out.stderr


def test_runtime_loads_neither_torch_nor_openmmlab_nor_mmpvt():
    code = ('import sys, mmpvt_runtime; print(sorted({m.split(".")[0] for m in sys.modules} & '
            '{"torch", "mmengine", "mmcv", "mmdet", "mmseg", "mmpvt"}))')
    assert run_tool([sys.executable, '-c', code]).stdout.strip() == '[]'


def test_labels_read_class_and_percent_score_as_mmdet_writes_them():
    assert label_text(1, 0.87654, ['circle', 'square']) == 'square: 87.7'
    assert label_text(4, 0.5, ['circle']) == 'class 4: 50.0'  # no name known


def test_classes_without_a_palette_get_mmdets_random_colours():
    from mmdet.visualization import get_palette
    assert random_palette(7) == [tuple(int(v) for v in c) for c in get_palette('random', 7)]


def test_boxes_are_drawn_in_their_class_colour_above_the_score_threshold_only():
    image = np.full((120, 160, 3), 100, np.uint8)
    result = dict(bboxes=np.array([[10, 10, 70, 60], [80, 20, 150, 100]], np.float32),
                  scores=np.array([0.9, 0.3], np.float32), labels=np.array([1, 0]))
    palette = [(0, 0, 255), (255, 0, 0)]  # RGB: class 0 blue, class 1 red
    drawn = draw_detections(image, result, ['a', 'b'], palette, score_thr=0.3)
    # box 0's left edge, below its label: red at alpha 0.8 over grey, in BGR
    np.testing.assert_allclose(drawn[45, 10], [20, 20, 224], atol=1)
    # box 1's score is not above the threshold (mmdet keeps scores > thr): nothing drawn
    assert (drawn[:, 75:] == 100).all()


def test_prediction_json_has_detinferencers_keys_and_leaves_masks_out():
    result = dict(bboxes=np.array([[1, 2, 3, 4]], np.float32), scores=np.array([0.5], np.float32),
                  labels=np.array([2]), masks=np.ones((1, 5, 5), bool))
    assert prediction_json(result) == dict(labels=[2], scores=[0.5], bboxes=[[1, 2, 3, 4]])


def _onnx_infer(inputs, out_dir):
    return run_tool(['tools/deploy/onnx_infer.py', str(inputs), 'model.onnx', '--out-dir',
                     str(out_dir)], check=False)


def test_onnx_infer_refuses_an_out_dir_equal_to_the_input_directory(tmp_path):
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    out = _onnx_infer(tmp_path, tmp_path)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f'onnx_infer: --out-dir {tmp_path} is the input directory; choose another one, the '
        'outputs would be written among your images']
    assert [p.name for p in tmp_path.iterdir()] == ['a.png']


def test_onnx_infer_refuses_to_draw_over_its_input_images(tmp_path):
    (tmp_path / 'vis').mkdir()
    cv2.imwrite(str(tmp_path / 'vis' / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    out = _onnx_infer(tmp_path / 'vis', tmp_path)  # the drawing of vis/a.png is vis/a.png
    assert out.returncode == 1
    assert out.stderr.splitlines() == [f'onnx_infer: --out-dir {tmp_path} would overwrite '
                                       f'{tmp_path / "vis" / "a.png"} with its drawing; choose '
                                       'another']
