"""What tools/demo.py prints at the end (print_summary), on fabricated run_demo results: no
training here (the runs themselves are in test_demo.py)."""
import pytest
from mmengine.config import Config

from mmpvt_tools.demo import _captions
from .helpers import REPO, load_tool

RULE = '=' * 60


def result(scope, metrics, captions, name, images):
    """A run_demo result of the demo config `name`."""
    work = f'work_dirs/{name}'
    return dict(metrics=metrics, checkpoint=f'{work}/epoch_10.pth',
                picture=f'{work}/predictions.png', captions=captions, work_dir=work,
                log_file=f'{work}/run.log', num_test_images=images, default_scope=scope)


def summary(capsys, res, seconds=83.0):
    load_tool('demo').print_summary(res, seconds)
    return capsys.readouterr().out.splitlines()


def test_a_classifier_prints_mmpretrains_accuracies_in_percent_and_its_tiles_caption(capsys):
    """mmpretrain's Accuracy names its metrics accuracy/top1, accuracy/top5 (percent); each tile
    of a classifier's picture is one crop with ground truth and prediction written on it."""
    res = result('mmpretrain', {
        'accuracy/top1': 99.35897827148438,
        'accuracy/top5': 100.0
    }, ('ground truth and prediction', ), 'cls_pvt_v2_b0', 157)
    assert summary(capsys, res) == [
        '', RULE, 'Final metrics (validation split, 157 images):', '  accuracy/top1  99.36 %',
        '  accuracy/top5  100.00 %', 'checkpoint:  work_dirs/cls_pvt_v2_b0/epoch_10.pth',
        'predictions: work_dirs/cls_pvt_v2_b0/predictions.png  '
        '(each tile: ground truth and prediction)', 'log:         work_dirs/cls_pvt_v2_b0/run.log',
        'time:        1 min 23 s'
    ]


@pytest.mark.parametrize('scope,metrics,captions,lines', [
    pytest.param('mmdet', {
        'coco/bbox_mAP': 0.464,
        'coco/bbox_mAP_50': 0.875
    }, ('ground truth', 'prediction (score >= 0.3)'), [
        '  coco/bbox_mAP     0.4640', '  coco/bbox_mAP_50  0.8750',
        'ground truth | prediction (score >= 0.3)'
    ], id='detector'),
    pytest.param('mmseg', {
        'aAcc': 96.9,
        'mIoU': 73.4
    }, ('ground truth', 'prediction'),
                 ['  aAcc  96.9000', '  mIoU  73.4000', 'ground truth | prediction'],
                 id='segmentor'),
])
def test_dense_prediction_prints_its_metrics_and_the_two_halves_of_each_tile(
        capsys, scope, metrics, captions, lines):
    out = summary(capsys, result(scope, metrics, captions, 'demo', 60))
    assert out[3:5] == lines[:2]
    assert out[6] == f'predictions: work_dirs/demo/predictions.png  (each tile: {lines[2]})'


def test_no_metrics_says_that_nothing_was_predicted(capsys):
    out = summary(capsys,
                  result('mmdet', {}, ('ground truth', 'prediction (score >= 0.3)'), 'demo', 60))
    assert out[3] == ('  none: the model made no prediction above its score threshold (train '
                      'longer)')


def test_the_classifier_demos_picture_gets_one_caption_for_both():
    """What run_demo draws (and returns as `captions`) for configs/demo/cls_pvt_v2_b0.py."""
    cfg = Config.fromfile(f'{REPO}/configs/demo/cls_pvt_v2_b0.py')
    assert _captions(cfg) == ('ground truth and prediction', )
