"""The ``mmpvt`` metadata of an exported file is checked against its task's schema before anything
runs (mmpvt_runtime.metadata): an edited or damaged entry is one error naming the entry, what it
should hold and what it holds. Every file the export writes passes it (each OnnxModel of
tests/deploy/test_onnx_models.py is built through it); here, metadata written by hand in the
export's format, one entry edited per case."""
import copy
import json

import cv2
import numpy as np
import pytest

from mmpvt_runtime import OnnxModel
from mmpvt_runtime.metadata import MetadataError, check_metadata
from mmpvt_runtime.model import ModelFileError
from ..helpers import onnx_infer, tiny_segmentation_graph

COMMON = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
              pad_size_divisor=32, classes=['circle', 'square'], palette=[[220, 20, 60],
                                                                          [119, 11, 32]])
RESIZE = dict(type='resize', scale=[1333, 800], size_divisor=1)
DELTA = dict(type='delta', means=[0, 0, 0, 0], stds=[1, 1, 1, 1], clip_border=True,
             wh_ratio_clip=0.016)
ANCHORS = dict(strides=[[8, 8], [16, 16]], base_anchors=[[[-4, -4, 12, 12]], [[-8, -8, 24, 24]]],
               coder=DELTA)
VALID = {
    'det':
    dict(
        COMMON, task='det', resize=RESIZE, num_classes=2, score_factors=False, **ANCHORS,
        test_cfg=dict(nms_pre=1000, score_thr=0.05, iou_threshold=0.5, max_per_img=100,
                      min_bbox_size=0)),
    'two_stage':
    dict(
        COMMON, task='two_stage', resize=RESIZE, graphs={'bbox0': 'model.bbox0.onnx'},
        rpn=dict(ANCHORS, test_cfg=dict(nms_pre=1000, max_per_img=1000, iou_threshold=0.7,
                                        min_bbox_size=0)),
        rcnn=dict(
            num_classes=2, test_cfg=dict(score_thr=0.05, iou_threshold=0.5, max_per_img=100),
            stages=[
                dict(coder=DELTA, reg_class_agnostic=False, bbox_graph='bbox0',
                     bbox_roi=dict(strides=[4, 8, 16, 32], finest_scale=56.0))
            ])),
    'detr':
    dict(COMMON, task='detr', resize=RESIZE, num_classes=2, max_per_img=100),
    'seg':
    dict(COMMON, task='seg', resize=dict(RESIZE, type='align', size_divisor=32)),
    'cls':
    dict(
        COMMON, task='cls', pad_size_divisor=1, num_classes=2, crop=[224, 224],
        resize=dict(type='resize_edge', scale=256, edge='short', interpolation='bicubic',
                    backend='pillow')),
}


@pytest.mark.parametrize('task', list(VALID))
def test_the_exports_format_passes(task):
    check_metadata(copy.deepcopy(VALID[task]))


def edited(task, path, value):
    """VALID[task] with the entry at `path` ('a.b[0].c') set to `value` (None: removed)."""
    meta = copy.deepcopy(VALID[task])
    *parents, last = path.replace('[', '.').replace(']', '').split('.')
    node = meta
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return meta


@pytest.mark.parametrize('task,path,value,message', [
    ('det', 'task', 'panoptic',
     "task: expected one of 'det', 'two_stage', 'detr', 'seg', 'cls', got 'panoptic'"),
    ('det', 'mean', None, 'mean: missing (expected a list of 3 items, each a finite number)'),
    ('det', 'std', [0, 0, 0], 'std[0]: expected a finite number in (0, inf], got 0'),
    ('seg', 'std', [1, 'x', 1], "std[1]: expected a finite number in (0, inf], got 'x'"),
    ('det', 'bgr_to_rgb', 'yes', "bgr_to_rgb: expected true or false, got 'yes'"),
    ('det', 'pad_size_divisor', 0, 'pad_size_divisor: expected an integer >= 1, got 0'),
    ('det', 'resize.scale', [0, 800], 'resize.scale[0]: expected an integer >= 1, got 0'),
    ('det', 'resize.type', 'crop', "resize.type: expected one of 'resize', 'align', got 'crop'"),
    ('det', 'strides', [], 'strides: expected a list of at least 1 items, each a list of 2 '
     'items, each a finite number in (0, inf], got []'),
    ('det', 'coder.type', 'other', "coder.type: expected one of 'delta', 'distance', got 'other'"),
    ('det', 'coder.stds', [1, 1, 0, 1], 'coder.stds[2]: expected a finite number in (0, inf], '
     'got 0'),
    ('det', 'test_cfg.max_per_img', 0, 'test_cfg.max_per_img: expected an integer >= 1, got 0'),
    ('det', 'test_cfg.score_thr', 2, 'test_cfg.score_thr: expected a finite number in [0, 1], '
     'got 2'),
    ('det', 'test_cfg.iou_threshold', 0, 'test_cfg.iou_threshold: expected a finite number in '
     '(0, 1], got 0'),
    ('det', 'num_classes', True, 'num_classes: expected an integer >= 1, got True'),
    ('det', 'classes', ['circle'], 'classes: expected 2 names (num_classes), got 1'),
    ('det', 'palette', [[255, 0]], 'palette[0]: expected a list of 3 items, each an integer >= 0, '
     'got [255, 0]'),
    ('two_stage', 'graphs.bbox0', '../../elsewhere/x.onnx',
     "graphs.bbox0: expected a file name beside the model (no directory part), got "
     "'../../elsewhere/x.onnx'"),
    ('two_stage', 'graphs.bbox0', '/abs/x.onnx', "graphs.bbox0: expected a file name beside the "
     "model (no directory part), got '/abs/x.onnx'"),
    ('two_stage', 'rcnn.stages[0].bbox_graph', 'mask0',
     "rcnn.stages[0].bbox_graph: expected one of the graphs (bbox0), got 'mask0'"),
    ('two_stage', 'rcnn.stages', [], 'rcnn.stages: expected a list of at least 1 items, each an '
     'object, got []'),
    ('detr', 'max_per_img', 0, 'max_per_img: expected an integer >= 1, got 0'),
    ('cls', 'crop', [0, 224], 'crop[0]: expected an integer >= 1, got 0'),
    ('cls', 'resize.backend', 'PIL', "resize.backend: expected one of 'cv2', 'pillow', got 'PIL'"),
])
def test_an_edited_entry_is_named_with_what_it_should_hold(task, path, value, message):
    with pytest.raises(MetadataError) as error:
        check_metadata(edited(task, path, value))
    assert str(error.value) == message


def test_a_coder_without_a_type_is_read_as_the_delta_coder_of_older_exports():
    check_metadata(edited('det', 'coder.type', None))


@pytest.mark.parametrize('text,reason', [
    (json.dumps(dict(VALID['seg'], resize=dict(type='resize', scale=[64, 64]),
                     std=[1, 1, 0])), 'std[2]: expected a finite number in (0, inf], got 0'),
    ('{"task": "seg", ', 'Expecting property name enclosed in double quotes: line 1 column 17 '
     '(char 16)'),
])
def test_a_model_with_unusable_metadata_is_refused_when_opened(tmp_path, text, reason):
    tiny_segmentation_graph(tmp_path / 'edited.onnx', 64, text)
    with pytest.raises(ModelFileError) as error:
        OnnxModel(tmp_path / 'edited.onnx')
    assert str(error.value) == (f'{tmp_path / "edited.onnx"}: its mmpvt metadata does not hold '
                                f'what the runtime needs ({reason}); re-export it with '
                                'tools/deploy/export_onnx.py')


@pytest.mark.slow  # the tool in its own process
def test_onnx_infer_says_it_in_one_line_before_reading_any_image(tmp_path):
    tiny_segmentation_graph(tmp_path / 'edited.onnx', 64,
                            json.dumps(dict(VALID['seg'], pad_size_divisor=0)))
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((64, 64, 3), np.uint8))
    out = onnx_infer(tmp_path / 'a.png', tmp_path / 'edited.onnx', '--out-dir', tmp_path / 'out')
    assert out.returncode == 1 and out.stderr.splitlines() == [
        f'onnx_infer: {tmp_path / "edited.onnx"}: its mmpvt metadata does not hold what the '
        'runtime needs (pad_size_divisor: expected an integer >= 1, got 0); re-export it with '
        'tools/deploy/export_onnx.py'
    ]
    assert not (tmp_path / 'out' / 'vis').exists()


def test_the_schema_knows_exactly_the_tasks_the_runtime_runs():
    from mmpvt_runtime import metadata, model
    assert set(metadata.TASKS) == set(model.TASKS)
