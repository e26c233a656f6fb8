"""What several test modules use: paths, running the tools, building models from configs, and
comparing numeric outputs of two paths (ONNX vs eager, mmpvt vs a reference).

Comparing detections: two numeric paths agree on every value to float32 noise, but the *order* of
detections whose scores differ by less than that noise is decided by the noise, and it changes
with the CPU (AVX-512 on one machine, AVX2 on another). A detection list is therefore compared as
a set of matched pairs, never by rank: see :func:`match_detections`.
"""
import copy
import os
import subprocess
import sys
from typing import Dict, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from mmpvt.models.builder import registry_of

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)

# The tolerances of the ONNX-vs-predict comparisons: boxes within 1e-3 (relative and absolute,
# pixels), scores within 1e-4 absolute. Measured errors are 20-100x smaller (docs/deployment.md).
BOX_TOL = 1e-3
SCORE_TOL = 1e-4


def run_tool(args: Sequence[str], env: dict = None, timeout: int = 600,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run a command from the repository root with this interpreter; `args[0]` ending in .py is
    run by it. With `check`, a non-zero exit is an AssertionError showing the output's end."""
    full_env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1', **(env or {}))
    full_env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + full_env.get('PATH', '')
    cmd = [sys.executable, *args] if args[0].endswith('.py') else list(args)
    result = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n'
                             f'{result.stderr[-3000:]}')
    return result


def build_model(cfg):
    """The model of an mmengine Config; deep-copied because some heads (DETRHead) write into
    the config dict they are given."""
    return registry_of(cfg).build(copy.deepcopy(cfg.model))


def max_abs_diff(a: Sequence, b: Sequence) -> float:
    """Largest absolute difference over two equally long sequences of tensors."""
    assert len(a) == len(b), (len(a), len(b))
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def detections_as_numpy(instances) -> Dict[str, np.ndarray]:
    """mmdet ``pred_instances`` (or a dict of arrays) as {'bboxes', 'scores', 'labels'[, 'masks']}
    numpy arrays."""
    get = instances.get if isinstance(instances, dict) else lambda k: getattr(instances, k, None)
    out = {}
    for key in ('bboxes', 'scores', 'labels', 'masks'):
        value = get(key)
        if value is not None:
            out[key] = value.numpy() if hasattr(value, 'numpy') else np.asarray(value)
    return out


def match_detections(got, expected, score_tol: float = SCORE_TOL, box_tol: float = BOX_TOL,
                     max_unmatched: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """Pair the detections of two paths that are the same detection; returns (i_got, i_expected).

    Two detections are the same when their labels are equal, their scores agree within
    `score_tol` and their boxes within `box_tol` (absolute + relative, per coordinate). Among such
    candidates the pairing minimises the total box error (an assignment, so it is one to one).
    This makes the comparison independent of the order of near-equal scores.

    A detection may stay unpaired only where a near-tie decides *membership* rather than order:
    its score lies within `score_tol` of the cut-off (the lowest score either path kept: a tie at
    max_per_img or at score_thr keeps one twin in one path and the other twin in the other). At
    most `max_unmatched` per side, so a broken path cannot pass as a pile of "ties". Everything
    else is an AssertionError saying which detections found no partner.
    """
    got, expected = detections_as_numpy(got), detections_as_numpy(expected)
    gb, gs, gl = got['bboxes'], got['scores'], got['labels']
    eb, es, el = expected['bboxes'], expected['scores'], expected['labels']
    compatible = ((gl[:, None] == el[None, :])
                  & (np.abs(gs[:, None] - es[None, :]) <= score_tol)
                  & np.all(np.abs(gb[:, None] - eb[None, :])
                           <= box_tol + box_tol * np.abs(eb[None, :]), axis=-1))
    box_error = np.abs(gb[:, None] - eb[None, :]).max(axis=-1) if len(gb) and len(eb) else \
        np.zeros((len(gb), len(eb)))
    cost = np.where(compatible, box_error, 1e9)
    rows, cols = linear_sum_assignment(cost)
    keep = compatible[rows, cols]
    rows, cols = rows[keep], cols[keep]
    cut_off = max(gs.min(initial=np.inf), es.min(initial=np.inf)) if len(gs) and len(es) else 0
    for name, scores, paired in (('got', gs, rows), ('expected', es, cols)):
        lonely = np.setdiff1d(np.arange(len(scores)), paired)
        off_tie = lonely[scores[lonely] > cut_off + score_tol]
        assert len(off_tie) == 0 and len(lonely) <= max_unmatched, (
            f'{len(lonely)} {name} detections have no partner (same label, score within '
            f'{score_tol}, box within {box_tol}); {len(off_tie)} of them are not at the cut-off '
            f'score {cut_off:.6f}: indices {lonely.tolist()}, scores {scores[lonely].tolist()}')
    return rows, cols


def assert_same_detections(got, expected, min_count: int = 50,
                           max_flipped_mask_fraction: float = 1e-4) -> None:
    """The deployment target, independent of the order of near-equal scores: every detection
    of one path is one of the other (:func:`match_detections`), and where both have masks, at most
    `max_flipped_mask_fraction` of the positive pixels differ (a pixel flips only where the pasted
    probability is within float32 noise of the mask threshold)."""
    rows, cols = match_detections(got, expected)
    assert len(rows) >= min_count, (len(rows), min_count)  # random heads: plenty to compare
    got, expected = detections_as_numpy(got), detections_as_numpy(expected)
    if 'masks' in got and 'masks' in expected:
        assert got['masks'].shape[1:] == expected['masks'].shape[1:]
        flipped = int((got['masks'][rows] != expected['masks'][cols]).sum())
        positive = int(expected['masks'][cols].sum())
        assert positive > 0 and flipped <= max_flipped_mask_fraction * positive, \
            (flipped, positive)


class RunsCode:
    """A pickle payload: unpickling it creates the directory `marker`, the proof that loading a
    checkpoint ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def poison_hub_cache(torch_home, name: str = 'evil.pth'):
    """Put a checkpoint whose unpickling runs code into the torch hub cache under `torch_home`,
    as a download of ``https://example.invalid/<name>`` would leave it; returns the marker path
    that running it would create."""
    import torch
    cache = torch_home / 'hub' / 'checkpoints'
    cache.mkdir(parents=True, exist_ok=True)
    marker = torch_home / 'code_ran'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'payload': RunsCode(str(marker))},
               cache / name)
    return marker
