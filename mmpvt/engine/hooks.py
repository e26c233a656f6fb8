"""Runner hooks of mmpvt's tools."""
import logging

from mmengine.dist import all_gather_object, broadcast_object_list, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ..datasets.reports import coco_losses, describe
from ..fileio import incomplete_checkpoint
from ..models.checkpoints.whole_model import fit_state_dict
from ..registry import HOOKS


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Fit every checkpoint the Runner loads (``load_from``, ``--resume``) to the model before it
    is loaded: see :func:`~mmpvt.models.checkpoints.whole_model.fit_state_dict`.

    Args:
        strict: True (``tools/test.py``, resuming): a key of the model the file lacks, a key it
            does not have or a shape that differs is an error naming them. False (``load_from``
            for fine-tuning): those keep the model's initial weights, with one log line.
    """

    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        source = getattr(runner, '_load_from', None) or 'being loaded'
        fit_state_dict(model, checkpoint, str(source), strict=self.strict)


@HOOKS.register_module()
class ResumeAgreementHook(Hook):
    """Every rank of a resumed run starts from the checkpoint rank 0 chose, or all stop.

    ``--resume`` picks the newest complete checkpoint of the work dir on each rank; with node-local
    work dirs or a shared file system that lags, ranks could pick different files and train on
    from different iterations (or one would wait forever in a collective). Before the Runner
    loads anything (``before_run`` precedes its ``load_or_resume``), rank 0's decision is
    broadcast; a rank that chose otherwise takes it with one log line, and if any rank cannot
    read that file every rank stops with the same one-line error naming the ranks and the file.
    A run of one process is left as it is.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        if get_world_size() == 1:
            return
        # the Runner's own resume decision (mmengine keeps it in these two attributes)
        mine = (bool(runner._resume), runner._load_from)
        decision = [mine]
        broadcast_object_list(decision, src=0)
        resume, path = decision[0]
        readable = not resume or path is None or incomplete_checkpoint(path) is None
        unreadable = [rank for rank, ok in enumerate(all_gather_object(readable)) if not ok]
        if unreadable:
            raise RuntimeError(
                f'--resume: rank 0 resumes from {path}, which rank(s) {unreadable} cannot read '
                '(node-local work dirs?); put the work dir on a file system every node sees, or '
                'give --resume PATH to a checkpoint every node can read')
        if (resume, path) != mine:
            print_log(
                f'--resume: rank {get_rank()} resumes as rank 0 does, from '
                f'{path if resume else "scratch"} (its own choice was '
                f'{mine[1] if mine[0] else "scratch"})', logger='current')
        runner._resume, runner._load_from = resume, path


def _leaf_datasets(dataset) -> list:
    """The datasets inside mmengine's wrappers (ConcatDataset, RepeatDataset, ...)."""
    inner = getattr(dataset, 'datasets',
                    None) or ([dataset.dataset] if hasattr(dataset, 'dataset') else None)
    if inner is None:
        return [dataset]
    return [leaf for d in inner for leaf in _leaf_datasets(d)]


class DataLostError(ValueError):
    """A dataset left annotations or images out (with ``strict``), or nothing at all is left."""


@HOOKS.register_module()
class DatasetReportHook(Hook):
    """Say what each COCO-style detection dataset of the run left out of its annotation file:
    one log line per reason with counts (:func:`mmpvt.datasets.reports.coco_losses`), before
    anything is trained or tested.

    Args:
        strict: any loss stops the run with those lines (``--strict-data``). Default: False.
            A split with no sample left stops it either way.
    """

    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict

    def before_run(self, runner) -> None:
        # rank 0 reads the annotation files (a COCO train file is hundreds of MB: once per run,
        # not once per process) and tells the other ranks whether to stop
        problems = [self._problems(runner) if get_rank() == 0 else None]
        broadcast_object_list(problems, src=0)  # (nothing to do for one process)
        if problems[0]:
            raise DataLostError('; '.join(problems[0]) + (
                ' (--strict-data: fix the annotations, or run without it)' if self.strict else ''))

    def _problems(self, runner) -> list:
        """Logs each dataset's losses; returns what stops the run."""
        from mmdet.datasets import CocoDataset  # detection configs only: mmdet is an extra

        problems = []
        for split in ('train', 'val', 'test'):
            loop = getattr(runner, f'_{split}_loop', None)
            dataloader = getattr(loop, 'dataloader', None)  # built loops only
            if dataloader is None:
                continue
            for dataset in _leaf_datasets(dataloader.dataset):
                if not isinstance(dataset, CocoDataset):
                    continue
                lines = describe(split, dataset, coco_losses(dataset))
                for line in lines:
                    print_log(line, logger='current', level=logging.WARNING)
                if len(dataset) == 0:
                    problems.append(f'{split} data {dataset.ann_file}: no sample left' +
                                    (f' ({"; ".join(lines)})' if lines else ''))
                elif self.strict and lines:
                    problems.append('; '.join(lines))
        return problems
