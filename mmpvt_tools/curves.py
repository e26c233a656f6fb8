"""Training curves of several runs side by side, from what mmengine logs: the paper's Fig. 5 view
(validation AP per epoch, pretrained vs random init, PVT vs ResNet).

mmengine's LocalVisBackend writes ``WORK_DIR/<timestamp>/vis_data/scalars.json``, one JSON object
per line: training records (``loss``, ``lr``, ... with ``epoch`` in epoch-based runs and ``iter``,
at ``step`` = the iteration) and validation records (``coco/bbox_mAP``, ``mIoU``, ... at ``step`` =
the epoch in epoch-based runs, the iteration otherwise). A run resumed into the same work dir
has one timestamped folder per start; they are read in order, and where a step repeats the last
value wins.
"""
import glob
import json
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from mmpvt.fileio import atomic_path

Record = Dict[str, float]


class Curve(NamedTuple):
    """One plotted line: `run` (its legend name), `key`, and the x / y values drawn."""
    run: str
    key: str
    x: List[float]
    y: List[float]


def scalar_files(work_dir: str) -> List[str]:
    """The scalars.json files of a work dir (directly under it, or per timestamped start), oldest
    first; FileNotFoundError naming the folder if there is none."""
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir not found: {work_dir}')
    files = sorted(
        glob.glob(osp.join(work_dir, 'vis_data', 'scalars.json')) +
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'{work_dir}: no vis_data/scalars.json in it or in a timestamped '
                                'folder of it (mmengine writes WORK_DIR/<timestamp>/vis_data/'
                                'scalars.json with the default LocalVisBackend)')
    return files


def read_records(work_dir: str) -> List[Record]:
    """Every record of a work dir's scalars.json files, in the order they were written."""
    records = []
    for path in scalar_files(work_dir):
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{path}, line {number}: not a JSON record ({e.msg})') from e
                if not isinstance(record, dict) or 'step' not in record:
                    raise ValueError(f"{path}, line {number}: expected an object with a 'step', "
                                     f'got {line.strip()[:80]!r}')
                records.append(record)
    return records


def series(records: Sequence[Record], key: str) -> Tuple[List[float], List[float]]:
    """(steps, values) of `key`, sorted by step, the last value of a repeated step kept."""
    by_step = {}
    for record in records:
        if key in record:
            by_step[record['step']] = record[key]
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def x_label(records: Sequence[Record], key: str) -> str:
    """'epoch' for a validation metric of an epoch-based run (its records carry no 'iter' while
    the training records carry 'epoch'), else 'iteration'."""
    with_key = [r for r in records if key in r]
    epoch_based = any('epoch' in r for r in records)
    return 'epoch' if epoch_based and not any('iter' in r for r in with_key) else 'iteration'


def plot_curves(work_dirs: Sequence[str], keys: Sequence[str] = ('coco/bbox_mAP', ),
                legend: Optional[Sequence[str]] = None, out: str = 'curves.png',
                title: Optional[str] = None) -> List[Curve]:
    """Draw each of `keys` against epoch (or iteration) for every run, one panel per key, one line
    per run, into the PNG `out`. Returns the lines as drawn (read back from the figure).

    legend: a name per work dir (default: the work dirs' folder names). A key that some runs lack
    is drawn for the others; a key that no run has is a ValueError naming the keys there are.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    if not work_dirs or not keys:
        raise ValueError('give at least one work dir and one key')
    names = list(legend) if legend else [osp.basename(osp.normpath(w)) for w in work_dirs]
    if len(names) != len(work_dirs):
        raise ValueError(f'--legend: {len(names)} names for {len(work_dirs)} work dirs')
    runs = [read_records(w) for w in work_dirs]
    for key in keys:
        if not any(key in r for records in runs for r in records):
            found = sorted({k for records in runs for r in records for k in r} - {'step'})
            raise ValueError(f'--keys {key}: no run logged it; the runs have {found}')
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.5), squeeze=False)
    curves = []
    for ax, key in zip(axes[0], keys):
        for name, records in zip(names, runs):
            steps, values = series(records, key)
            if steps:
                ax.plot(steps, values, marker='o', markersize=3, label=name)
        label = x_label([r for records in runs for r in records], key)
        ax.set_xlabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        ax.legend()
        for line in ax.get_lines():
            curves.append(
                Curve(line.get_label(), key,
                      np.asarray(line.get_xdata()).tolist(),
                      np.asarray(line.get_ydata()).tolist()))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:  # the picture is complete or absent, never half-written
            fig.savefig(tmp, dpi=120, format=osp.splitext(out)[1][1:].lower() or 'png')
    finally:
        plt.close(fig)
    return curves
