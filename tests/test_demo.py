"""The synthetic shapes dataset and the one-command demo (mmpvt.apis.demo_data, mmpvt.apis.demo)."""
import ast
import filecmp
import json
import os

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from mmpvt.apis import demo_data

from .helpers import REPO, run_tool

pytestmark = pytest.mark.slow  # whole models, training or subprocesses: not in test-fast

SMALL = dict(num_train=4, num_val=2, img_size=(64, 96), max_objects=3, size_range=(20, 48))


def test_same_seed_gives_byte_identical_files(tmp_path):
    demo_data.generate(str(tmp_path / 'a'), **SMALL)
    demo_data.generate(str(tmp_path / 'b'), **SMALL)
    cmp = filecmp.dircmp(tmp_path / 'a', tmp_path / 'b')
    files = []
    for root, _, names in os.walk(tmp_path / 'a'):
        files += [os.path.relpath(os.path.join(root, n), tmp_path / 'a') for n in names]
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'b', files,
                                               shallow=False)
    assert len(files) == 2 * 6 + 3 and mismatch == [] and errors == [] and not cmp.left_only


def test_other_seed_gives_other_images(tmp_path):
    demo_data.generate(str(tmp_path / 'a'), **SMALL)
    demo_data.generate(str(tmp_path / 'b'), **dict(SMALL, seed=1))
    a = (tmp_path / 'a' / 'images' / 'training' / '000000.png').read_bytes()
    assert a != (tmp_path / 'b' / 'images' / 'training' / '000000.png').read_bytes()


def test_coco_json_and_masks_describe_the_same_objects(tiny_shapes):
    coco = COCO(str(tiny_shapes / 'annotations' / 'instances_training.json'))
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(demo_data.CLASSES)
    assert len(coco.getImgIds()) == 8 and len(coco.getAnnIds()) >= 8
    for image in coco.loadImgs(coco.getImgIds()):
        semantic = cv2.imread(str(tiny_shapes / 'annotations' / 'training' / image['file_name']),
                              cv2.IMREAD_UNCHANGED)
        assert semantic.shape == (96, 128) and set(np.unique(semantic)) <= {0, 1, 2, 3, 4}
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image['id'])):
            x, y, w, h = ann['bbox']
            assert w > 0 and h > 0 and all(len(p) >= 6 for p in ann['segmentation'])
            pixels = coco.annToMask(ann).astype(bool)
            # polygon rasterisation vs the rendered mask: the labels agree almost everywhere
            agree = np.mean(semantic[pixels] == ann['category_id'])
            assert agree > 0.9


def test_existing_directory_is_never_overwritten(tmp_path):
    root = tmp_path / 'shapes'
    demo_data.generate(str(root), **SMALL)
    before = (root / 'meta.json').read_bytes()
    assert demo_data.generate(str(root), **SMALL)['num_train'] == 4  # same parameters: reused
    with pytest.raises(FileExistsError, match='not generated with these parameters'):
        demo_data.generate(str(root), **dict(SMALL, num_train=5))
    assert (root / 'meta.json').read_bytes() == before


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def fail(root, split, *args):
        if split == 'validation':
            raise KeyboardInterrupt
        return original(root, split, *args)

    original = demo_data._write_split
    monkeypatch.setattr(demo_data, '_write_split', fail)
    with pytest.raises(KeyboardInterrupt):
        demo_data.generate(str(tmp_path / 'shapes'), **SMALL)
    assert os.listdir(tmp_path) == []


def test_meta_json_records_parameters(tiny_shapes):
    meta = json.loads((tiny_shapes / 'meta.json').read_text())
    assert meta['classes'] == list(demo_data.CLASSES) and meta['img_size'] == [96, 128]


# ---- the demo through the tools ------------------------------------------------------------
@pytest.mark.parametrize('config,options,metric', [
    ('retinanet_pvt_t', ['train_cfg.max_epochs=1', 'model.test_cfg.score_thr=0.0'],
     'coco/bbox_mAP_50'),
    ('mask_rcnn_pvt_t', ['train_cfg.max_epochs=1', 'model.test_cfg.rcnn.score_thr=0.0',
                         'model.test_cfg.rcnn.max_per_img=20'],
     'coco/segm_mAP_50'),
    ('sem_fpn_pvt_t', ['train_cfg.max_iters=2', 'train_cfg.val_interval=2'], 'mIoU'),
    ('detr_pvt_t', ['train_cfg.max_epochs=1'], 'coco/bbox_mAP_50'),
    ('retinanet_pvt_v2_b0', ['train_cfg.max_epochs=1', 'model.test_cfg.score_thr=0.0'],
     'coco/bbox_mAP_50'),
])
def test_demo_trains_evaluates_and_draws(tiny_shapes, tmp_path, config, options, metric,
                                        monkeypatch):
    out = run_tool(['tools/demo.py', '--config', f'configs/demo/{config}.py', '--data',
                    str(tiny_shapes), '--work-dir', str(tmp_path), '--cfg-options',
                    'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
                    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False', *options]).stdout
    summary = out[out.index('Final metrics'):]
    assert metric in summary
    picture = cv2.imread(str(tmp_path / 'predictions.png'))
    assert picture is not None and picture.shape[0] == 256  # one row of 4 validation images
    assert f'predictions: {tmp_path / "predictions.png"}' in summary
    monkeypatch.setenv('MMPVT_DEMO_DATA', f'{tiny_shapes}/')
    model_options = dict(o.split('=') for o in options if o.startswith('model.'))
    check_image_demo_draws(config, tmp_path, tiny_shapes, {k: ast.literal_eval(v)
                                                           for k, v in model_options.items()})


def check_image_demo_draws(config, work_dir, data_root, cfg_options):
    """tools/image_demo.py's code path on the model just trained: one drawing per image, the
    image's size, with something drawn on it (score_thr 0: a 1-epoch model scores low)."""
    from mmpvt.apis import find_resume_checkpoint
    from mmpvt.apis.inference import draw_predictions
    image = sorted((data_root / 'images' / 'validation').glob('*.png'))[0]
    drawn, _ = draw_predictions(str(image), f'{REPO}/configs/demo/{config}.py',
                             weights=find_resume_checkpoint(str(work_dir)),
                             out_dir=str(work_dir / 'image_demo'), score_thr=0.0,
                             cfg_options=cfg_options)
    assert drawn == [str(work_dir / 'image_demo' / 'vis' / image.name)]
    original, picture = cv2.imread(str(image)), cv2.imread(drawn[0])
    assert picture.shape == original.shape and not np.array_equal(picture, original)
