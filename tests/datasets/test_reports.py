"""What a COCO-style detection dataset leaves out of its annotation file is counted per reason
(mmpvt.datasets.reports), said by the tools in one log line each, and stops the run with
``--strict-data``, as does a split with nothing left; an annotation file that is not JSON and an
image that cannot be decoded are named. The expected counts are those of the annotation file
each test writes."""
import json
import shutil
from collections import Counter

import pytest
from mmdet.datasets import CocoDataset

from mmpvt.datasets.reports import coco_losses, describe
from ..helpers import run_main

CATEGORIES = [dict(id=1, name='circle'), dict(id=2, name='square'), dict(id=7, name='triangle')]


def box(image_id, bbox, category_id=1):
    return dict(image_id=image_id, bbox=bbox, area=bbox[2] * bbox[3], category_id=category_id,
                iscrowd=0)


IMAGES = [
    dict(id=1, file_name='1.png', width=200, height=100),
    *(dict(id=i, file_name=f'{i}.png', width=100, height=80) for i in (2, 3, 4))
]
ANNOTATIONS = [
    box(1, [10, 10, 20, 20]),
    box(1, [30, 30, 10, 10], category_id=2),  # kept
    box(2, [10, 10, 20, 20], category_id=7),  # triangle: in the file, not a class
    box(2, [10, 10, 20, 20], category_id=99),  # no such category at all
    box(3, [150, 10, 20, 20]),  # right of the 100 px wide image
    box(3, [10, 10, 0.5, 20]),  # half a pixel wide
    box(9, [10, 10, 20, 20]),  # an image the file does not list
]


def annotation_file(path, annotations=ANNOTATIONS):
    data = dict(images=IMAGES, categories=CATEGORIES,
                annotations=[dict(a, id=k) for k, a in enumerate(annotations, 1)])
    path.write_text(json.dumps(data))
    return path


def dataset(path, **filter_cfg):
    return CocoDataset(
        ann_file=str(path), metainfo=dict(classes=('circle', 'square')), data_prefix=dict(img=''),
        pipeline=[], filter_cfg=filter_cfg or None, test_mode=not filter_cfg)


def test_each_reason_is_counted_once_per_annotation(tmp_path):
    built = dataset(annotation_file(tmp_path / 'a.json'))
    lines = describe('val', built, coco_losses(built))
    assert lines == [
        'val data a.json: 1 of 7 annotations left out: box outside its image',
        'val data a.json: 1 of 7 annotations left out: box under 1 pixel wide or high, or '
        'area <= 0',
        'val data a.json: 2 of 7 annotations left out: category id not among the classes',
        "val data a.json: 1 of 7 annotations left out: image id not in the file's images"
    ]


def test_training_filters_are_counted_per_image(tmp_path):
    # image 2 (a triangle and an unknown id) and image 4 (nothing) have no annotation of the
    # classes; image 3 has (both invalid), is kept by filter_empty_gt and is under min_size 90
    built = dataset(annotation_file(tmp_path / 'a.json'), filter_empty_gt=True, min_size=90)
    assert [built.get_data_info(i)['img_id'] for i in range(len(built))] == [1]  # mmdet kept
    assert [loss.line() for loss in coco_losses(built) if loss.what == 'images'] == [
        '2 of 4 images left out: image without an annotation of the classes (filter_empty_gt)',
        '1 of 4 images left out: image smaller than filter_cfg.min_size'
    ]


def test_a_file_without_losses_has_no_line(tmp_path):
    path = annotation_file(tmp_path / 'clean.json', ANNOTATIONS[:2])
    assert coco_losses(dataset(path)) == []


# ---- the tools -----------------------------------------------------------------------------
QUICK = 'configs/demo/retinanet_pvt_t_quick.py'
NO_WORKERS = [
    f'{split}_dataloader.{key}={value}' for split in ('train', 'val')
    for key, value in (('num_workers', 0), ('persistent_workers', False))
]


def train_on(tiny_shapes, tmp_path, options, *flags):
    return run_main(
        'train.py',
        [QUICK, '--work-dir', tmp_path / 'work', *flags, '--cfg-options', *NO_WORKERS, *options],
        env={'MMPVT_DEMO_DATA': f'{tiny_shapes}/'}, check=False)


@pytest.mark.slow  # tools/train.py up to its first batch
def test_strict_data_stops_training_on_a_mislabelled_category_in_one_line(tiny_shapes, tmp_path):
    data = json.loads((tiny_shapes / 'annotations' / 'instances_training.json').read_text())
    per_image = Counter(a['image_id'] for a in data['annotations'])
    # one of several on its image: the image itself stays
    wrong = next(a for a in data['annotations'] if per_image[a['image_id']] > 1)
    wrong['category_id'] = 99
    (tmp_path / 'bad.json').write_text(json.dumps(data))
    result = train_on(tiny_shapes, tmp_path,
                      [f'train_dataloader.dataset.ann_file={tmp_path / "bad.json"}'],
                      '--strict-data')
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f'train: train data bad.json: 1 of {len(data["annotations"])} annotations left out: '
        'category id not among the classes (--strict-data: fix the annotations, or run without '
        'it)'
    ]
    assert not list((tmp_path / 'work').rglob('*.pth'))


@pytest.mark.slow  # tools/train.py up to its first batch
def test_an_annotation_file_that_is_not_json_is_named(tiny_shapes, tmp_path):
    text = '{"images": [{"id": 1, '
    (tmp_path / 'cut.json').write_text(text)
    with pytest.raises(json.JSONDecodeError) as parsed:  # what json says of it, by itself
        json.loads(text)
    result = train_on(tiny_shapes, tmp_path,
                      [f'val_dataloader.dataset.ann_file={tmp_path / "cut.json"}'])
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f'train: annotation file {tmp_path / "cut.json"} is not JSON ({parsed.value}); expected '
        'a COCO annotation file'
    ]


@pytest.mark.slow  # tools/train.py up to its first batch
def test_an_image_that_cannot_be_decoded_is_named(tiny_shapes, tmp_path):
    data = tmp_path / 'shapes'
    shutil.copytree(tiny_shapes, data)
    broken = sorted((data / 'images' / 'training').glob('*.png'))[0]
    broken.write_bytes(broken.read_bytes()[:100])  # cut short, as by an interrupted copy
    result = run_main('train.py',
                      [QUICK, '--work-dir', tmp_path / 'work', '--cfg-options', *NO_WORKERS],
                      env={'MMPVT_DEMO_DATA': f'{data}/'}, check=False)
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f'train: image {broken} cannot be decoded (truncated, or not an image); replace it, or '
        'remove it from the annotations'
    ]


@pytest.mark.slow  # tools/train.py up to its first batch
def test_a_training_split_with_nothing_left_stops_before_training(tiny_shapes, tmp_path):
    data = json.loads((tiny_shapes / 'annotations' / 'instances_training.json').read_text())
    for annotation in data['annotations']:
        annotation['category_id'] = 99  # no class: filter_empty_gt drops every image
    (tmp_path / 'none.json').write_text(json.dumps(data))
    result = train_on(tiny_shapes, tmp_path,
                      [f'train_dataloader.dataset.ann_file={tmp_path / "none.json"}'])
    validation = f'{tiny_shapes}/annotations/instances_validation.json'
    assert result.returncode == 1 and result.stderr.splitlines() == [
        'train: a dataset has no sample left after its filters (filter_cfg, classes, indices); '
        f'check its annotation files: {tmp_path / "none.json"}, {validation}'
    ]
