"""What a detection dataset left out of its annotation file, by reason.

mmdet's ``CocoDataset`` drops, without a word, every annotation whose box lies outside its image
or is smaller than a pixel, whose category is not among the classes, and (when training) every
image left without annotations or smaller than ``filter_cfg.min_size``: a mislabelled category
id is then trained as background and left out of the test mAP. :func:`coco_losses` reads the
annotation file again and counts each reason, in mmdet's order of checks; the totals are those
of the built dataset (``len(dataset)`` images).
"""
import json
import os.path as osp
from collections import Counter
from typing import List, NamedTuple

from mmengine.fileio import get_local_path

# The reasons, in the order mmdet's CocoDataset.parse_data_info checks them.
OUTSIDE = 'box outside its image'
TOO_SMALL = 'box under 1 pixel wide or high, or area <= 0'
UNKNOWN_CATEGORY = 'category id not among the classes'
NO_IMAGE = "image id not in the file's images"
NO_ANNOTATION = 'image without an annotation of the classes (filter_empty_gt)'
BELOW_MIN_SIZE = 'image smaller than filter_cfg.min_size'
OTHER_FILTER = "image left out by the dataset's own filter"


class Loss(NamedTuple):
    """`count` of `total` annotations (``what='annotations'``) or images left out for `reason`."""
    what: str
    reason: str
    count: int
    total: int

    def line(self) -> str:
        return f'{self.count} of {self.total} {self.what} left out: {self.reason}'


def parsed_json(path: str):
    """The JSON content of `path` (local or any mmengine backend); a file that does not parse is
    a ValueError naming it and what json says."""
    with get_local_path(path) as local:
        try:
            with open(local, encoding='utf-8') as f:
                return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f'annotation file {path} is not JSON ({e}); expected a COCO '
                             'annotation file') from None


def read_annotation_file(path: str) -> dict:
    """A COCO annotation file as a dict; a file that is not one is a ValueError naming it."""
    data = parsed_json(path)
    if not isinstance(data, dict) or not isinstance(data.get('images'), list) \
            or not isinstance(data.get('annotations'), list):
        raise ValueError(f'annotation file {path}: expected a COCO annotation file (an object '
                         "with 'images' and 'annotations' lists)")
    return data


def annotation_files(cfg) -> List[str]:
    """The JSON annotation files a config's datasets and evaluators read (data_root joined as
    mmengine's BaseDataset joins it)."""
    found = []

    def visit(node, data_root=''):
        if isinstance(node, (list, tuple)):
            for item in node:
                visit(item, data_root)
        elif isinstance(node, dict):
            data_root = node.get('data_root') or data_root
            ann_file = node.get('ann_file')
            if isinstance(ann_file, str) and ann_file.endswith('.json'):
                found.append(
                    ann_file if osp.isabs(ann_file) or '://' in ann_file else osp.
                    join(data_root, ann_file))
            for key in ('dataset', 'datasets'):
                visit(node.get(key), data_root)

    for split in ('train', 'val', 'test'):
        visit((cfg.get(f'{split}_dataloader') or {}).get('dataset'))
        visit(cfg.get(f'{split}_evaluator'))
    return list(dict.fromkeys(found))


def first_unparsable(paths: List[str]) -> str:
    """What :func:`parsed_json` says of the first of `paths` that does not parse; '' if all do."""
    for path in paths:
        try:
            parsed_json(path)
        except ValueError as e:
            return str(e)
    return ''


def annotation_loss(annotation: dict, image: dict, category_ids: set) -> str:
    """The reason mmdet's CocoDataset leaves `annotation` out, '' if it keeps it."""
    x1, y1, w, h = annotation['bbox']
    inter_w = max(0, min(x1 + w, image['width']) - max(x1, 0))
    inter_h = max(0, min(y1 + h, image['height']) - max(y1, 0))
    if inter_w * inter_h == 0:
        return OUTSIDE
    if annotation['area'] <= 0 or w < 1 or h < 1:
        return TOO_SMALL
    if annotation['category_id'] not in category_ids:
        return UNKNOWN_CATEGORY
    return ''


def coco_losses(dataset) -> List[Loss]:
    """What the built mmdet CocoDataset `dataset` left out of its annotation file, one
    :class:`Loss` per reason with a count (none if nothing was)."""
    data = read_annotation_file(dataset.ann_file)
    images = {image['id']: image for image in data['images']}
    category_ids = set(dataset.cat_ids)
    annotations = [a for a in data['annotations'] if not a.get('ignore', False)]
    reasons = Counter()
    for annotation in annotations:
        image = images.get(annotation['image_id'])
        reasons[NO_IMAGE if image is
                None else annotation_loss(annotation, image, category_ids)] += 1
    losses = [
        Loss('annotations', reason, reasons[reason], len(annotations))
        for reason in (OUTSIDE, TOO_SMALL, UNKNOWN_CATEGORY, NO_IMAGE) if reasons[reason]
    ]
    # images: mmdet's filter_data (training only) drops those without any annotation of the
    # classes' categories (valid or not) if filter_empty_gt, then those under min_size. A subset
    # chosen with mmengine's `indices` is the user's choice, not a loss: no image line then.
    if getattr(dataset, '_indices', None) is not None:
        return losses
    # (serialized datasets empty their data_list: read each entry back)
    kept_ids = {dataset.get_data_info(i)['img_id'] for i in range(len(dataset))}
    with_class = {a['image_id'] for a in data['annotations'] if a['category_id'] in category_ids}
    filters = {} if dataset.test_mode else (dataset.filter_cfg or {})
    dropped = Counter(
        NO_ANNOTATION if filters.get('filter_empty_gt') and image['id'] not in with_class else
        BELOW_MIN_SIZE if min(image['width'], image['height']) <
        filters.get('min_size', 0) else OTHER_FILTER for image in data['images']
        if image['id'] not in kept_ids)
    losses += [
        Loss('images', reason, dropped[reason], len(images))
        for reason in (NO_ANNOTATION, BELOW_MIN_SIZE, OTHER_FILTER) if dropped[reason]
    ]
    return losses


def describe(split: str, dataset, losses: List[Loss]) -> List[str]:
    """One line per loss, naming the split and the file."""
    return [f'{split} data {osp.basename(dataset.ann_file)}: {loss.line()}' for loss in losses]
