"""The PVT paper's Figure 5 in miniature, on the demo data and a CPU (``tools/demo.py --figure5``).

The paper plots validation AP per epoch of RetinaNet + PVT-S whose backbone starts from ImageNet
weights against the same detector from random weights. Here the "ImageNet" is the shape
classifier of ``configs/demo/cls_pvt_v2_b0.py`` (trained on crops of the same synthetic shapes)
and the detector RetinaNet + PVTv2-B0 on the quick demo schedule:

1. the classifier demo, unless its last checkpoint is there already (then it is reused);
2. ``retinanet_pvt_v2_b0_quick_from_cls.py``, the backbone from that checkpoint, and
3. ``retinanet_pvt_v2_b0_quick.py``, the same from scratch, both through
   :func:`mmpvt_tools.demo.run_demo` with validation after every epoch;
4. their ``coco/bbox_mAP`` and ``coco/bbox_mAP_50`` against epoch, one panel each, drawn by
   :func:`mmpvt_tools.curves.plot_curves` into ``WORK_DIR/curves.png``, and a table of the values
   drawn (:func:`figure5_table`).
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmpvt.apis import find_resume_checkpoint
from . import demo
from .curves import Curve, plot_curves, read_records

CLASSIFIER_CONFIG = 'cls_pvt_v2_b0.py'
# (work dir name, config, legend) of the two detectors, the pretrained one first
DETECTORS = (
    ('from_classifier', 'retinanet_pvt_v2_b0_quick_from_cls.py', 'from the demo classifier'),
    ('from_scratch', 'retinanet_pvt_v2_b0_quick.py', 'from scratch'),
)
KEYS = ('coco/bbox_mAP', 'coco/bbox_mAP_50')
# How the table names the keys and the runs (the legend is too long for a column head)
KEY_NAMES = {'coco/bbox_mAP': 'AP', 'coco/bbox_mAP_50': 'AP50'}
SHORT_NAMES = ('cls', 'scratch')
TITLE = 'RetinaNet + PVTv2-B0 on the demo shapes: backbone from the demo classifier vs scratch'
# The option that points the pretrained detector's backbone at the classifier's checkpoint
BACKBONE_OPTION = 'model.backbone.init_cfg.checkpoint'


def classifier_checkpoint(work_dir: str, config: str) -> str:
    """The checkpoint the classifier run of `config` leaves in `work_dir` when it is complete:
    ``epoch_<max_epochs>.pth``."""
    max_epochs = Config.fromfile(config).train_cfg.max_epochs
    return osp.join(osp.abspath(work_dir), f'epoch_{max_epochs}.pth')


def _value(curve: Optional[Curve], epoch) -> Optional[float]:
    if curve is None or epoch not in curve.x:
        return None
    return curve.y[curve.x.index(epoch)]


def _number(value: Optional[float], sign: bool = False) -> str:
    if value is None:
        return '-'
    return f'{value:+.3f}' if sign else f'{value:.3f}'


def figure5_table(curves: Sequence[Curve], legend: Sequence[str] = tuple(d[2] for d in DETECTORS),
                  keys: Sequence[str] = KEYS, short: Sequence[str] = SHORT_NAMES) -> str:
    """The plotted values as text: one row per epoch with each key of both runs (`legend`: the
    pretrained run first) and their gap (pretrained - scratch), then the gap at the last epoch
    both runs have. '-': that run has no value there (an evaluation without any prediction
    above the score threshold logs no AP)."""
    if len(legend) != 2 or len(short) != 2:
        raise ValueError(f'expected two runs (pretrained, scratch), got legend {list(legend)}')
    lines = {(c.run, c.key): c for c in curves}
    epochs = sorted({x for c in curves if c.run in legend and c.key in keys for x in c.x})
    heads = ['epoch']
    for key in keys:
        name = KEY_NAMES.get(key, key)
        heads += [f'{name} {short[0]}', f'{name} {short[1]}', 'gap']
    rows = []
    for epoch in epochs:
        row = [f'{epoch:g}']
        for key in keys:
            a, b = (_value(lines.get((run, key)), epoch) for run in legend)
            row += [_number(a), _number(b), _number(None if None in (a, b) else a - b, True)]
        rows.append(row)
    widths = [max(len(r[i]) for r in [heads] + rows) for i in range(len(heads))]
    text = ['  '.join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [heads] + rows]
    text.insert(
        0, f'{short[0]} = backbone {legend[0]}, {short[1]} = {legend[1]}; '
        'gap = cls - scratch')
    final = []
    for key in keys:
        a_line, b_line = (lines.get((run, key)) for run in legend)
        both = [x for x in (a_line.x if a_line else []) if b_line and x in b_line.x]
        if both:
            a, b = _value(a_line, both[-1]), _value(b_line, both[-1])
            final.append(f'{KEY_NAMES.get(key, key)} {a - b:+.3f} ({a:.3f} vs {b:.3f}, '
                         f'epoch {both[-1]:g})')
    text.append('final gap: ' +
                ('; '.join(final) if final else 'none (no epoch where both runs logged a value)'))
    return '\n'.join(text)


def draw_figure5(pretrained: str, scratch: str, out: str,
                 legend: Sequence[str] = tuple(d[2] for d in DETECTORS), keys: Sequence[str] = KEYS,
                 title: str = TITLE) -> Tuple[List[Curve], str]:
    """Draw `keys` of the two runs' scalars.json (`pretrained`, `scratch`: work dirs, or one
    start's log dir) into `out`; returns the curves as drawn and :func:`figure5_table` of them.

    A key that neither run logged is left out; none of `keys` logged is a ValueError that says
    why that happens (no prediction above the score threshold at any evaluation)."""
    records = [r for run in (pretrained, scratch) for r in read_records(run)]
    logged = [k for k in keys if any(k in r for r in records)]
    if not logged:
        raise ValueError(f'{pretrained}, {scratch}: no validation result with {list(keys)} in '
                         'their vis_data/scalars.json: the detectors predicted nothing above '
                         'their score threshold at any evaluation (train longer)')
    curves = plot_curves([pretrained, scratch], logged, legend, out, title)
    return curves, figure5_table(curves, legend, logged)


def run_figure5(data_root: str = 'data/shapes', work_dir: str = 'work_dirs/figure5',
                classifier_work_dir: str = 'work_dirs/cls_pvt_v2_b0',
                configs_dir: str = 'configs/demo', cfg_options: Optional[dict] = None,
                resume: bool = False, quiet: bool = True, say: Callable[[str],
                                                                        None] = print) -> dict:
    """Figure 5 in miniature: the classifier (trained unless its last checkpoint exists), the two
    detectors (validated after every epoch, in ``WORK_DIR/from_classifier`` and
    ``WORK_DIR/from_scratch``), ``WORK_DIR/curves.png`` and the table.

    `cfg_options` go to both detectors (not to the classifier). `resume` continues interrupted
    detector runs, and the curves are then read from all starts in their work dirs; otherwise
    from this start's log folder only (an earlier run in the same work dir is not mixed in).
    Returns dict(curves=..., table=..., picture=..., classifier=..., runs={name: run_demo's
    result}, num_test_images=...).
    """
    classifier_config = osp.join(configs_dir, CLASSIFIER_CONFIG)
    checkpoint = classifier_checkpoint(classifier_work_dir, classifier_config)
    if osp.isfile(checkpoint):
        say(f'figure 5, 1/3: reusing the demo classifier {checkpoint}')
    else:
        say(f'figure 5, 1/3: training the demo classifier ({CLASSIFIER_CONFIG}): no {checkpoint} '
            'yet')
        earlier = find_resume_checkpoint(osp.abspath(classifier_work_dir))
        demo.run_demo(classifier_config, data_root, classifier_work_dir, resume=bool(earlier),
                      quiet=quiet, say=say)
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'the classifier run left no {checkpoint}')
    runs: Dict[str, dict] = {}
    for step, (name, config, legend) in enumerate(DETECTORS, 2):
        say(f'figure 5, {step}/3: RetinaNet + PVTv2-B0, backbone {legend}')
        options = dict(cfg_options or {})
        if name == DETECTORS[0][0]:  # the pretrained one
            options[BACKBONE_OPTION] = checkpoint
        runs[name] = demo.run_demo(
            osp.join(configs_dir, config), data_root, osp.join(work_dir, name), options,
            resume=resume, validate=True, quiet=quiet, say=say)
    picture = osp.join(osp.abspath(work_dir), 'curves.png')
    say(f'drawing validation AP per epoch of both -> {picture}')
    sources = [runs[name]['work_dir' if resume else 'log_dir'] for name, _, _ in DETECTORS]
    curves, table = draw_figure5(*sources, picture)
    return dict(curves=curves, table=table, picture=picture, classifier=checkpoint, runs=runs,
                num_test_images=runs[DETECTORS[1][0]]['num_test_images'])
