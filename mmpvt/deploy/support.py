"""What ONNX export supports, as tables keyed by class: the head that decides how a detector
is exported (a two-stage detector's ``roi_head``, any other detector's ``bbox_head``) -> the
task written into the file's metadata (which ``mmpvt_runtime`` post-processing runs) and the
options of that export.

The keys are exact classes, looked up by ``type(head)``, never by ``isinstance``: mmdet's
subclasses change what the parent computes (SparseRoIHead and HybridTaskCascadeRoIHead are
CascadeRoIHeads, TOOD / PAA / RTMDet heads are ATSSHeads, ConditionalDETRHead is a DETRHead),
and the numpy side reproduces the parents only. Classifiers have a table of their own
(:func:`classifier_support_table`, mmpretrain's heads).
"""
import functools
from typing import Dict, NamedTuple, Optional, Tuple


class Support(NamedTuple):
    """One supported head class."""
    task: str  # 'det' (single-stage), 'two_stage', 'detr' or 'cls'
    extra_outputs: Tuple[str, ...] = ()  # det: per-level outputs after cls_* and reg_* (ctr_*)
    distances: bool = False  # det: the graph integrates GFL's distributions into distances
    cascade: bool = False  # two_stage: one bbox (and mask) graph per stage


@functools.lru_cache(maxsize=None)
def support_table() -> Dict[type, Support]:
    """{head class: Support}; built on first use so that importing mmpvt.deploy needs no mmdet
    (segmentors export without it). Order matters: error messages list the classes in it."""
    from mmdet.models.dense_heads import AnchorHead, ATSSHead, DETRHead, GFLHead, RetinaHead
    from mmdet.models.roi_heads import CascadeRoIHead, StandardRoIHead
    return {
        # single-stage: sigmoid scores on anchors, DeltaXYWHBBoxCoder deltas decoded in numpy
        RetinaHead: Support('det'),
        AnchorHead: Support('det'),
        ATSSHead: Support('det', extra_outputs=('ctr', )),  # score x sigmoid(centerness)
        GFLHead: Support('det', distances=True),
        # two-stage, by roi_head: features + RPN graph, then RoI graphs (mmpvt.deploy.two_stage)
        StandardRoIHead: Support('two_stage'),
        CascadeRoIHead: Support('two_stage', cascade=True),
        # DETR: one graph up to the last decoder layer's logits and boxes
        DETRHead: Support('detr'),
    }


@functools.lru_cache(maxsize=None)
def classifier_support_table() -> Dict[type, Support]:
    """{classifier head class: Support}: the heads whose output is the logits themselves (the
    runtime takes the softmax). A table of its own, built on first use, so that exporting a
    detector or segmentor needs no mmpretrain."""
    from mmpretrain.models.heads import LinearClsHead
    return {LinearClsHead: Support('cls')}


def _table(task: str) -> Dict[type, Support]:
    return classifier_support_table() if task == 'cls' else support_table()


def supported_names(task: str) -> Tuple[str, ...]:
    """The class names the table supports for `task`, in table order."""
    return tuple(cls.__name__ for cls, s in _table(task).items() if s.task == task)


def support_of(head, task: str) -> Optional[Support]:
    """The table's entry for `head` if it is exactly a class supported for `task`, else None."""
    entry = _table(task).get(type(head))
    return entry if entry is not None and entry.task == task else None
