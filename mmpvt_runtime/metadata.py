"""The schema of the ``mmpvt`` metadata of an exported file (what ``mmpvt.deploy.meta`` writes),
checked before anything is run: an edited or damaged entry is one :class:`MetadataError` naming
the entry and what it should hold, instead of a ``KeyError``, a division by zero or a silent
"0 detections" later.

    check_metadata(meta)   # raises MetadataError('resize.scale: expected ..., got ...')

The schema is data: each entry a :class:`Spec` (a check and the words for what it expects),
records (:func:`record`) of required and optional entries, one record per task (:data:`TASKS`).
Companion graph names must be plain file names: they are read from the model's own directory
only.
"""
import math
import os
from typing import Callable, Dict, NamedTuple, Optional


class MetadataError(ValueError):
    """An entry of the metadata that is missing or does not hold what the runtime needs."""


class Spec(NamedTuple):
    """`check(value, path)` raises MetadataError; `expected` says in words what it accepts."""
    check: Callable[[object, str], None]
    expected: str


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def _fail(path: str, expected: str, value) -> None:
    raise MetadataError(f'{path}: expected {expected}, got {_shown(value)}')


def simple(expected: str, accepts: Callable[[object], bool]) -> Spec:

    def check(value, path):
        if not accepts(value):
            _fail(path, expected, value)

    return Spec(check, expected)


def number(low: float = -math.inf, high: float = math.inf, low_open: bool = False) -> Spec:
    """A finite int or float in [low, high] (low excluded with `low_open`)."""
    bounds = ('(' if low_open else '[') + f'{low:g}, {high:g}]'
    expected = 'a finite number' + ('' if (low, high) == (-math.inf, math.inf) else f' in {bounds}')
    return simple(
        expected,
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and
        (v > low if low_open else v >= low) and v <= high)


def integer(low: int) -> Spec:
    return simple(f'an integer >= {low}',
                  lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low)


BOOLEAN = simple('true or false', lambda v: isinstance(v, bool))
TEXT = simple('a string', lambda v: isinstance(v, str))


def one_of(*choices) -> Spec:
    return simple('one of ' + ', '.join(map(repr, choices)), lambda v: v in choices)


def file_name() -> Spec:
    """A file of the model's own directory: a plain name, no directory part."""
    return simple(
        'a file name beside the model (no directory part)',
        lambda v: isinstance(v, str) and v not in
        ('', '.', '..') and os.path.basename(v) == v and '/' not in v and '\\' not in v)


def list_of(item: Spec, length: Optional[int] = None, min_length: int = 0) -> Spec:
    size = f'{length} ' if length is not None else (f'at least {min_length} ' if min_length else '')
    expected = f'a list of {size}items, each {item.expected}'

    def check(value, path):
        if not isinstance(value, list) or (length is not None and len(value) != length) \
                or len(value) < min_length:
            _fail(path, expected, value)
        for i, element in enumerate(value):
            item.check(element, f'{path}[{i}]')

    return Spec(check, expected)


def mapping(key: Spec, value: Spec) -> Spec:
    expected = f'an object of entries, each {value.expected}'

    def check(given, path):
        if not isinstance(given, dict):
            _fail(path, expected, given)
        for k, v in given.items():
            key.check(k, f'{path} key')
            value.check(v, f'{path}.{k}')

    return Spec(check, expected)


def nullable(spec: Spec) -> Spec:
    return Spec(lambda v, path: None
                if v is None else spec.check(v, path), f'null or {spec.expected}')


def either(*specs: Spec) -> Spec:
    """The first of `specs` that accepts the value (for plain values; records are told apart by
    their type entry, :func:`tagged`)."""
    expected = ' or '.join(s.expected for s in specs)

    def check(value, path):
        for spec in specs:
            try:
                spec.check(value, path)
                return
            except MetadataError:
                pass
        _fail(path, expected, value)

    return Spec(check, expected)


def tagged(key: str, records: Dict[str, Spec], default: str) -> Spec:
    """An object whose `key` entry (`default` if absent: files of older exports) names which of
    `records` it is."""

    def check(value, path):
        record({}, {key: one_of(*records)}).check(value, path)
        records[value.get(key, default)].check(value, path)

    return Spec(check, f'an object with {key} ' + ' or '.join(map(repr, records)))


def record(required: Dict[str, Spec], optional: Optional[Dict[str, Spec]] = None) -> Spec:
    """An object with every `required` entry (and any of `optional`), each as its spec says;
    other entries are let through (files of a newer export may add some)."""
    optional = optional or {}

    def check(value, path):
        if not isinstance(value, dict):
            _fail(path, 'an object', value)
        for name, spec in required.items():
            where = f'{path}.{name}' if path else name
            if name not in value:
                raise MetadataError(f'{where}: missing (expected {spec.expected})')
            spec.check(value[name], where)
        for name, spec in optional.items():
            if name in value:
                spec.check(value[name], f'{path}.{name}' if path else name)

    return Spec(check, 'an object')


# ---- the entries ------------------------------------------------------------------------------
POSITIVE = number(0, low_open=True)
SIDE = integer(1)
PROBABILITY = number(0, 1)
IOU = number(0, 1, low_open=True)
RGB = list_of(integer(0), length=3)  # (bounded below; mmdet's palettes are 0-255)
CHANNELS = list_of(number(), length=3)

COMMON = {
    'mean': CHANNELS,
    'std': list_of(POSITIVE, length=3),  # divided by
    'bgr_to_rgb': BOOLEAN,
    'pad_size_divisor': integer(1),
}
COMMON_OPTIONAL = {'classes': list_of(TEXT), 'palette': list_of(RGB)}

DENSE_RESIZE = record({
    'type': one_of('resize', 'align'),
    'scale': list_of(SIDE, length=2)
}, {'size_divisor': integer(1)})
CLS_RESIZE = record(
    {
        'type': one_of('resize_edge', 'resize'),
        'scale': either(SIDE, list_of(SIDE, length=2)),
        'interpolation': TEXT,
        'backend': one_of('cv2', 'pillow')
    }, {'edge': one_of('short', 'long', 'height', 'width')})
CODER = tagged(
    'type', {
        'delta':
        record({
            'means': list_of(number(), length=4),
            'stds': list_of(POSITIVE, length=4),
            'clip_border': BOOLEAN,
            'wh_ratio_clip': POSITIVE
        }),
        'distance':
        record({'clip_border': BOOLEAN})
    }, default='delta')
ANCHORS = {
    'strides': list_of(list_of(POSITIVE, length=2), min_length=1),
    'base_anchors': list_of(list_of(list_of(number(), length=4), min_length=1), min_length=1),
    'coder': CODER,
}
ROI_LEVELS = record({'strides': list_of(SIDE, min_length=1), 'finest_scale': POSITIVE})
NMS_PRE = integer(-1)  # -1: all of them
MAX_PER_IMAGE = integer(1)

TASKS: Dict[str, Spec] = {
    'det':
    record(
        dict(
            COMMON, resize=DENSE_RESIZE, num_classes=integer(1), **ANCHORS, score_factors=BOOLEAN,
            test_cfg=record({
                'nms_pre': NMS_PRE,
                'score_thr': PROBABILITY,
                'iou_threshold': IOU,
                'max_per_img': MAX_PER_IMAGE,
                'min_bbox_size': number()
            })), COMMON_OPTIONAL),
    'two_stage':
    record(
        dict(
            COMMON, resize=DENSE_RESIZE, graphs=mapping(TEXT, file_name()), rpn=record(
                dict(
                    ANCHORS, test_cfg=record({
                        'nms_pre': NMS_PRE,
                        'max_per_img': MAX_PER_IMAGE,
                        'iou_threshold': IOU,
                        'min_bbox_size': number()
                    }))), rcnn=record(
                        {
                            'num_classes':
                            integer(1),
                            'stages':
                            list_of(
                                record(
                                    {
                                        'coder': CODER,
                                        'reg_class_agnostic': BOOLEAN,
                                        'bbox_roi': ROI_LEVELS,
                                        'bbox_graph': TEXT
                                    }, {
                                        'mask_roi': ROI_LEVELS,
                                        'mask_graph': TEXT
                                    }), min_length=1),
                            'test_cfg':
                            record({
                                'score_thr': PROBABILITY,
                                'iou_threshold': IOU,
                                'max_per_img': MAX_PER_IMAGE
                            })
                        }, {
                            'class_agnostic_mask': BOOLEAN,
                            'mask_thr_binary': PROBABILITY
                        })), COMMON_OPTIONAL),
    'detr':
    record(
        dict(COMMON, resize=DENSE_RESIZE, num_classes=integer(1), max_per_img=MAX_PER_IMAGE),
        COMMON_OPTIONAL),
    'seg':
    record(dict(COMMON, resize=DENSE_RESIZE), COMMON_OPTIONAL),
    'cls':
    record(
        dict(COMMON, resize=CLS_RESIZE, crop=nullable(list_of(SIDE, length=2)),
             num_classes=integer(1)), COMMON_OPTIONAL),
}


def check_metadata(meta) -> None:
    """Raise :class:`MetadataError` naming the first entry of `meta` that the runtime cannot
    use (the schema of its task), or a graph a two-stage stage names that ``graphs`` lacks."""
    record({'task': one_of(*TASKS)}).check(meta, '')
    TASKS[meta['task']].check(meta, '')
    if meta['task'] == 'two_stage':
        for i, stage in enumerate(meta['rcnn']['stages']):
            for key in ('bbox_graph', 'mask_graph'):
                if key in stage and stage[key] not in meta['graphs']:
                    raise MetadataError(f'rcnn.stages[{i}].{key}: expected one of the graphs '
                                        f'({", ".join(meta["graphs"])}), got {stage[key]!r}')
    classes, count = meta.get('classes') or [], _class_count(meta)
    if classes and count is not None and len(classes) != count:
        raise MetadataError(f'classes: expected {count} names (num_classes), got '
                            f'{len(classes)}')


def _class_count(meta: dict) -> Optional[int]:
    if meta['task'] == 'two_stage':
        return meta['rcnn']['num_classes']
    return meta.get('num_classes')
