"""Specification of the paper's Figure 5 in miniature (mmpvt_tools.figure5, `tools/demo.py
--figure5`): the two detector configs, the order of the runs (the classifier only when its
checkpoint is missing), the curves and the table of what was drawn. The runs themselves are
replaced by a fake that writes scalars.json as mmengine does; tests/test_demo.py runs the chain
end to end."""
import os
import os.path as osp
import pathlib

import cv2
import pytest
import torch
from mmengine.config import Config

from mmpvt_tools import demo, figure5
from mmpvt_tools.figure5 import BACKBONE_OPTION, classifier_checkpoint, draw_figure5
from ..helpers import REPO, write_run

DEMO = osp.join(REPO, 'configs', 'demo')
LEGEND = ['from the demo classifier', 'from scratch']
STAMP = '20240101_000000'


# ---- the table of what was drawn ------------------------------------------------------------
def test_the_table_has_every_epoch_of_both_runs_and_the_final_gap(tmp_path):
    pretrained = write_run(tmp_path / 'a', {STAMP: [(1, 0.2), (2, 0.3), (3, 0.35)]})
    scratch = write_run(tmp_path / 'b', {STAMP: [(1, 0.05), (2, 0.1), (3, 0.15)]})
    _, table = draw_figure5(pretrained, scratch, str(tmp_path / 'curves.png'))
    assert table.splitlines() == [
        'cls = backbone from the demo classifier, scratch = from scratch; gap = cls - scratch',
        'epoch  AP cls  AP scratch     gap  AP50 cls  AP50 scratch     gap',
        '    1   0.200       0.050  +0.150     0.400         0.100  +0.300',
        '    2   0.300       0.100  +0.200     0.600         0.200  +0.400',
        '    3   0.350       0.150  +0.200     0.700         0.300  +0.400',
        'final gap: AP +0.200 (0.350 vs 0.150, epoch 3); AP50 +0.400 (0.700 vs 0.300, epoch 3)'
    ]


def test_the_curves_are_both_keys_of_both_runs_as_logged(tmp_path):
    pretrained = write_run(tmp_path / 'a', {STAMP: [(1, 0.2), (2, 0.3)]})
    scratch = write_run(tmp_path / 'b', {STAMP: [(1, 0.05), (2, 0.1)]})
    out = tmp_path / 'figure' / 'curves.png'
    curves, _ = draw_figure5(pretrained, scratch, str(out))
    assert [(c.run, c.key, c.x, c.y)
            for c in curves] == [(LEGEND[0], 'coco/bbox_mAP', [1, 2], [0.2, 0.3]),
                                 (LEGEND[1], 'coco/bbox_mAP', [1, 2], [0.05, 0.1]),
                                 (LEGEND[0], 'coco/bbox_mAP_50', [1, 2], [0.4, 0.6]),
                                 (LEGEND[1], 'coco/bbox_mAP_50', [1, 2], [0.1, 0.2])]
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] > image.shape[0]  # two panels side by side
    assert [p for p in os.listdir(out.parent) if p != 'curves.png'] == []  # no temporary left


def test_an_epoch_one_run_did_not_log_is_a_dash_and_the_gap_is_taken_where_both_did(tmp_path):
    # an evaluation without any prediction above the score threshold logs no AP at all
    pretrained = write_run(tmp_path / 'a', {STAMP: [(1, 0.2), (2, 0.3), (3, 0.35)]})
    scratch = write_run(tmp_path / 'b', {STAMP: [(2, 0.1)]})
    _, table = draw_figure5(pretrained, scratch, str(tmp_path / 'curves.png'),
                            keys=['coco/bbox_mAP'])
    assert table.splitlines()[1:] == [
        'epoch  AP cls  AP scratch     gap', '    1   0.200           -       -',
        '    2   0.300       0.100  +0.200', '    3   0.350           -       -',
        'final gap: AP +0.200 (0.300 vs 0.100, epoch 2)'
    ]


def test_no_ap_logged_by_either_run_is_an_error_that_says_why(tmp_path):
    runs = []
    for name in 'ab':
        folder = tmp_path / name / STAMP / 'vis_data'
        folder.mkdir(parents=True)
        (folder / 'scalars.json').write_text('{"loss": 1.0, "epoch": 1, "iter": 2, "step": 2}\n')
        runs.append(str(tmp_path / name))
    with pytest.raises(
            ValueError, match=r'no validation result with \[.coco/bbox_mAP., '
            r'.coco/bbox_mAP_50.\].*predicted nothing above their '
            r'score threshold'):
        draw_figure5(*runs, str(tmp_path / 'curves.png'))
    assert not (tmp_path / 'curves.png').exists()


# ---- the configs ----------------------------------------------------------------------------
def test_both_detectors_validate_after_every_epoch():
    for name in ('retinanet_pvt_v2_b0_quick.py', 'retinanet_pvt_v2_b0_quick_from_cls.py'):
        assert Config.fromfile(osp.join(DEMO, name)).train_cfg.val_interval == 1, name


def test_the_detectors_differ_only_in_where_the_backbone_starts(monkeypatch):
    monkeypatch.delenv('MMPVT_DEMO_BACKBONE', raising=False)
    pretrained = Config.fromfile(osp.join(DEMO, 'retinanet_pvt_v2_b0_quick_from_cls.py'))
    scratch = Config.fromfile(osp.join(DEMO, 'retinanet_pvt_v2_b0_quick.py'))
    init = pretrained.model.backbone.pop('init_cfg')
    assert scratch.model.backbone.pop('init_cfg') is None
    # the backbone entries of the classifier demo's last checkpoint, the one --figure5 reuses
    assert init == dict(type='Pretrained', prefix='backbone.',
                        checkpoint='work_dirs/cls_pvt_v2_b0/epoch_10.pth')
    assert classifier_checkpoint('work_dirs/cls_pvt_v2_b0', osp.join(DEMO, 'cls_pvt_v2_b0.py')) \
        == osp.abspath(init.checkpoint)
    assert pretrained.model == scratch.model
    for key in ('train_dataloader', 'val_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'randomness'):
        assert pretrained[key] == scratch[key], key


def test_the_detectors_are_the_quick_pvt_t_demo_with_the_pvt_v2_b0_of_the_longer_one():
    scratch = Config.fromfile(osp.join(DEMO, 'retinanet_pvt_v2_b0_quick.py'))
    quick = Config.fromfile(osp.join(DEMO, 'retinanet_pvt_t_quick.py'))
    longer = Config.fromfile(osp.join(DEMO, 'retinanet_pvt_v2_b0.py'))
    assert scratch.model.backbone == longer.model.backbone
    assert scratch.model.neck.in_channels == longer.model.neck.in_channels == [32, 64, 160, 256]
    assert scratch.model.bbox_head == quick.model.bbox_head  # GroupNorm, 4 classes
    assert scratch.img_scale == quick.img_scale == (160, 160)
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler', 'randomness'):
        assert scratch[key] == quick[key], key
    assert scratch.train_cfg.max_epochs == quick.train_cfg.max_epochs


# ---- the runs, with a fake run_demo -----------------------------------------------------------
# AP per epoch that the fake runs "validate" (write_run logs AP50 = 2 AP)
CURVES = {
    'retinanet_pvt_v2_b0_quick_from_cls.py': [(1, 0.3), (2, 0.4)],
    'retinanet_pvt_v2_b0_quick.py': [(1, 0.1), (2, 0.2)]
}


@pytest.fixture
def fake_runs(monkeypatch):
    """Replaces run_demo: records each call; a classifier run writes its last checkpoint, a
    detector run one start's scalars.json (CURVES)."""
    calls = []

    def run_demo(config, data_root, work_dir, cfg_options=None, resume=False, quiet=True, say=print,
                 validate=False):
        name, work_dir = osp.basename(config), osp.abspath(work_dir)
        calls.append(
            dict(config=name, work_dir=work_dir, options=dict(cfg_options or {}), resume=resume,
                 validate=validate))
        if name == 'cls_pvt_v2_b0.py':
            os.makedirs(work_dir, exist_ok=True)
            open(osp.join(work_dir, 'epoch_10.pth'), 'wb').close()
            return dict(work_dir=work_dir)
        stamp = f'2024010{len(calls)}_000000'
        write_run(pathlib.Path(work_dir), {stamp: CURVES[name]})
        return dict(work_dir=work_dir, log_dir=osp.join(work_dir, stamp), num_test_images=60)

    monkeypatch.setattr(demo, 'run_demo', run_demo)
    return calls


def run(tmp_path, **kwargs):
    said = []
    result = figure5.run_figure5('data', str(tmp_path / 'fig5'), str(tmp_path / 'cls'), DEMO,
                                 say=said.append, **kwargs)
    return result, said


def test_without_a_classifier_checkpoint_the_classifier_is_trained_first(fake_runs, tmp_path):
    result, said = run(tmp_path, cfg_options={'train_cfg.max_epochs': 2})
    checkpoint = str(tmp_path / 'cls' / 'epoch_10.pth')
    assert [(c['config'], c['work_dir'], c['validate']) for c in fake_runs] == [
        ('cls_pvt_v2_b0.py', str(tmp_path / 'cls'), False),
        ('retinanet_pvt_v2_b0_quick_from_cls.py', str(tmp_path / 'fig5' / 'from_classifier'), True),
        ('retinanet_pvt_v2_b0_quick.py', str(tmp_path / 'fig5' / 'from_scratch'), True)
    ]
    # the options go to the detectors only; the pretrained one starts from the checkpoint
    assert [c['options'] for c in fake_runs] == [{}, {
        'train_cfg.max_epochs': 2,
        BACKBONE_OPTION: checkpoint
    }, {
        'train_cfg.max_epochs': 2
    }]
    assert said == [
        f'figure 5, 1/3: training the demo classifier (cls_pvt_v2_b0.py): no {checkpoint} yet',
        'figure 5, 2/3: RetinaNet + PVTv2-B0, backbone from the demo classifier',
        'figure 5, 3/3: RetinaNet + PVTv2-B0, backbone from scratch',
        f'drawing validation AP per epoch of both -> {tmp_path / "fig5" / "curves.png"}'
    ]
    assert result['classifier'] == checkpoint and (tmp_path / 'fig5' / 'curves.png').is_file()
    assert result['table'].splitlines()[-1] == \
        'final gap: AP +0.200 (0.400 vs 0.200, epoch 2); AP50 +0.400 (0.800 vs 0.400, epoch 2)'


def test_a_classifier_checkpoint_that_is_there_is_reused(fake_runs, tmp_path):
    (tmp_path / 'cls').mkdir()
    (tmp_path / 'cls' / 'epoch_10.pth').write_bytes(b'')
    _, said = run(tmp_path)
    assert [c['config'] for c in fake_runs] == list(CURVES)
    checkpoint = tmp_path / 'cls' / 'epoch_10.pth'
    assert said[0] == f'figure 5, 1/3: reusing the demo classifier {checkpoint}'


def test_an_interrupted_classifier_run_is_continued(fake_runs, tmp_path):
    (tmp_path / 'cls').mkdir()
    torch.save({'state_dict': {}}, tmp_path / 'cls' / 'epoch_3.pth')  # a complete checkpoint
    run(tmp_path)
    assert fake_runs[0]['config'] == 'cls_pvt_v2_b0.py' and fake_runs[0]['resume'] is True


@pytest.mark.parametrize('resume', [False, True])
def test_the_curves_are_this_start_s_unless_resumed(fake_runs, tmp_path, resume):
    # an earlier run in the same work dir, with other values at the same epochs
    for name, values in (('from_classifier', [(1, 0.9), (2, 0.9),
                                              (3, 0.9)]), ('from_scratch', [(1, 0.8), (2, 0.8),
                                                                            (3, 0.8)])):
        write_run(tmp_path / 'fig5' / name, {'20230101_000000': values})
    result, _ = run(tmp_path, resume=resume)
    assert all(c['resume'] is resume for c in fake_runs[1:])
    ap = {c.run: (c.x, c.y) for c in result['curves'] if c.key == 'coco/bbox_mAP'}
    if resume:  # all starts, the later one winning where both have an epoch
        assert ap == {
            LEGEND[0]: ([1, 2, 3], [0.3, 0.4, 0.9]),
            LEGEND[1]: ([1, 2, 3], [0.1, 0.2, 0.8])
        }
    else:
        assert ap == {LEGEND[0]: ([1, 2], [0.3, 0.4]), LEGEND[1]: ([1, 2], [0.1, 0.2])}
