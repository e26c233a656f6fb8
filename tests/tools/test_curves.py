"""Specification of the run-comparison plots (mmpvt_tools.curves, tools/plot_curves.py): a logged
scalar against epoch for several runs, read from mmengine's vis_data/scalars.json files, drawn
as they are (read back from the figure), with one-line errors for a work dir without logs and a
key that no run logged."""
import json

import cv2
import pytest

from mmpvt_tools.curves import plot_curves, x_label
from ..helpers import run_main, write_run


@pytest.fixture
def two_runs(tmp_path):
    pretrained = write_run(tmp_path / 'pretrained',
                           {'20240101_000000': [(1, 0.2), (2, 0.3), (3, 0.35)]})
    # resumed after epoch 2 and epoch 2 evaluated again: the later value counts
    scratch = write_run(tmp_path / 'scratch', {
        '20240102_000000': [(1, 0.05), (2, 0.1)],
        '20240103_000000': [(2, 0.12), (3, 0.15)]
    })
    return pretrained, scratch


def test_the_plotted_curves_are_the_logged_values(two_runs, tmp_path):
    out = tmp_path / 'plots' / 'curves.png'
    curves = plot_curves(two_runs, ['coco/bbox_mAP'], ['pretrained', 'random init'], str(out))
    assert [(c.run, c.key, c.x, c.y)
            for c in curves] == [('pretrained', 'coco/bbox_mAP', [1, 2, 3], [0.2, 0.3, 0.35]),
                                 ('random init', 'coco/bbox_mAP', [1, 2, 3], [0.05, 0.12, 0.15])]
    image = cv2.imread(str(out))
    assert image is not None and image.shape[2] == 3


def test_each_key_is_a_panel_of_its_own(two_runs, tmp_path):
    curves = plot_curves(two_runs, ['coco/bbox_mAP', 'coco/bbox_mAP_50'],
                         out=str(tmp_path / 'c.png'))
    assert [(c.run, c.key) for c in curves] == [
        ('pretrained', 'coco/bbox_mAP'),
        ('scratch', 'coco/bbox_mAP'),  # default legend:
        ('pretrained', 'coco/bbox_mAP_50'),
        ('scratch', 'coco/bbox_mAP_50')
    ]  # folder names
    assert curves[3].y == [0.1, 0.24, 0.3]


def test_validation_metrics_are_per_epoch_and_training_scalars_per_iteration(two_runs):
    from mmpvt_tools.curves import read_records
    records = read_records(two_runs[0])
    assert x_label(records, 'coco/bbox_mAP') == 'epoch'
    assert x_label(records, 'loss') == 'iteration'


def test_a_key_that_one_run_lacks_is_drawn_for_the_others(two_runs, tmp_path):
    other = tmp_path / 'seg' / 'vis_data'
    other.mkdir(parents=True)
    (other / 'scalars.json').write_text(json.dumps({'mIoU': 40.0, 'step': 8000}) + '\n')
    curves = plot_curves([*two_runs, str(tmp_path / 'seg')], ['coco/bbox_mAP'],
                         out=str(tmp_path / 'c.png'))
    assert [c.run for c in curves] == ['pretrained', 'scratch']


def test_a_key_that_no_run_logged_is_an_error_listing_the_keys_there_are(two_runs, tmp_path):
    with pytest.raises(
            ValueError, match=r"--keys coco/segm_mAP: no run logged it; the runs have "
            r"\['coco/bbox_mAP', 'coco/bbox_mAP_50', 'epoch', "
            r"'iter', 'loss', 'lr'\]"):
        plot_curves(two_runs, ['coco/segm_mAP'], out=str(tmp_path / 'c.png'))
    assert not (tmp_path / 'c.png').exists()


def test_a_work_dir_without_scalars_is_an_error_naming_it(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match=rf'{tmp_path / "empty"}: no vis_data/scalars.json'):
        plot_curves([str(tmp_path / 'empty')], out=str(tmp_path / 'c.png'))


def test_a_legend_of_another_length_is_refused(two_runs, tmp_path):
    with pytest.raises(ValueError, match='--legend: 1 names for 2 work dirs'):
        plot_curves(two_runs, legend=['one'], out=str(tmp_path / 'c.png'))


def test_a_line_that_is_no_json_record_is_named(tmp_path):
    folder = tmp_path / 'run' / 'vis_data'
    folder.mkdir(parents=True)
    (folder / 'scalars.json').write_text('{"step": 1, "loss": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r'scalars.json, line 2: not a JSON record'):
        plot_curves([str(tmp_path / 'run')], ['loss'], out=str(tmp_path / 'c.png'))


@pytest.mark.slow
def test_plot_curves_tool_prints_each_curve_and_errors_in_one_line(two_runs, tmp_path):
    out = run_main('plot_curves.py', [
        *two_runs, '--keys', 'coco/bbox_mAP', '--legend', 'A', 'B', '--out',
        str(tmp_path / 'curves.png')
    ]).stdout.splitlines()
    assert out == [
        'coco/bbox_mAP A: 3 points, last 0.35 at 3', 'coco/bbox_mAP B: 3 points, last 0.15 at 3',
        f'plot written to {tmp_path / "curves.png"}'
    ]
    bad = run_main('plot_curves.py', [str(tmp_path / 'missing')], check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip() == f'plot_curves: work dir not found: {tmp_path / "missing"}'
