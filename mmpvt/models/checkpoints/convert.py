"""Telling checkpoints apart and converting them to mmpvt's layout.

A checkpoint is identified from its key names alone: its *family* (a v1 one has position tables,
a v2 one depth-wise convs in the feed-forward and per-stage norms) and its *layout* (official,
mmdet, timm, transformers, mmpvt; see :mod:`.pvt_v1` and :mod:`.pvt_v2`). Any of them may be
wrapped in a training checkpoint (``state_dict``/``model``/``module``) and carry a ``backbone.``
prefix (a whole detector or segmentor).

An ImageNet classifier of another layout (the authors', timm's, transformers') converts either to
a backbone (:func:`convert_to_mmpvt`, classification entries dropped) or whole, to the names of an
mmpretrain ``ImageClassifier`` holding our backbone (:func:`convert_classifier`: ``backbone.*``
and the linear head as ``head.fc.*``).
"""
import re
from collections import OrderedDict
from typing import List, NamedTuple, Optional, Tuple

from mmengine.logging import print_log
from torch import Tensor

from . import pvt_v1, pvt_v2
from .base import StateDict

# v2 first: its markers are the more specific ones
FAMILIES = (pvt_v2, pvt_v1)
_BY_NAME = {f.FAMILY: f for f in FAMILIES}

# Key patterns of each layout (either family); ``timm`` before ``mmpvt``: both use ``stages.``.
LAYOUT_PATTERNS = OrderedDict(
    official=re.compile(r'^(patch_embed\d+\.|pos_embed\d+$|block\d+\.\d+\.|norm\d+\.)'),
    mmdet=re.compile(r'^layers\.\d+\.\d+\.'),
    timm=re.compile(r'^(patch_embed\.(proj|norm)\.|stages\.\d+\.downsample\.'
                    r'|stages\.\d+\.blocks\.\d+\.mlp\.dwconv\.(weight|bias)$)'),
    transformers=re.compile(r'^((pvt_v2\.)?encoder\.layers\.\d+\.'
                            r'|(pvt\.)?encoder\.(patch_embeddings|block)\.\d+\.)'),
    mmpvt=re.compile(r'^stages\.\d+\.(patch_embed\.|pos_embed$|blocks\.|norm\.)'),
)
EXAMPLES = ('"patch_embed1.proj.weight" (official), "layers.0.0.projection.weight" (mmdet), '
            '"stages.0.downsample.proj.weight" (timm), '
            '"encoder.layers.0.patch_embedding.proj.weight" or '
            '"pvt.encoder.patch_embeddings.0.projection.weight" (transformers) or '
            '"stages.0.patch_embed.proj.weight" (mmpvt)')


class Conversion(NamedTuple):
    """A state dict in mmpvt's layout (a backbone's, or a whole classifier's) and where it came
    from."""
    state_dict: StateDict
    family: str  # 'PVT' | 'PVTv2'
    layout: str  # 'official' | 'mmdet' | 'timm' | 'transformers' | 'mmpvt'
    dropped: List[str]  # classification-only entries left out


def is_backbone_key(key: str) -> bool:
    return any(p.match(key) for p in LAYOUT_PATTERNS.values())


def identify(state_dict: StateDict) -> Tuple[str, str]:
    """(family, layout) of a backbone state dict: ('PVT' | 'PVTv2', 'official' | 'mmdet' | 'timm'
    | 'transformers' | 'mmpvt'); ValueError naming example keys if it is neither family."""
    counts = {name: sum(bool(p.match(k)) for k in state_dict)
              for name, p in LAYOUT_PATTERNS.items()}
    if counts['timm']:  # timm shares ``stages.{i}.blocks`` with mmpvt; its own keys decide
        counts['mmpvt'] = 0
    layout = max(counts, key=counts.get)
    family = next((f.FAMILY for f in FAMILIES if any(f.MARKER.search(k) for k in state_dict)),
                  None)
    if counts[layout] == 0 or family is None:
        sample = ', '.join(list(state_dict)[:5])
        raise ValueError(f'Not a PVT or PVTv2 checkpoint: expected keys like {EXAMPLES}; got '
                         f'{sample} ...')
    return family, layout


def unwrap(checkpoint: dict) -> Tuple[StateDict, dict]:
    """(state dict, meta) of a loaded checkpoint object; DDP ``module.`` prefix removed."""
    if not isinstance(checkpoint, dict):
        raise TypeError(f'A checkpoint must be a dict of tensors, got {type(checkpoint).__name__}')
    meta = checkpoint.get('meta') if isinstance(checkpoint.get('meta'), dict) else {}
    sd = checkpoint
    for wrapper in ('state_dict', 'model', 'module'):
        if isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
            break
    if sd and all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    return OrderedDict(sd), dict(meta)


def extract_state_dict(checkpoint: dict, prefix: Optional[str] = None) -> StateDict:
    """The backbone's tensors from a loaded checkpoint object.

    Unwraps ``state_dict``/``model``/``module`` containers and a DDP ``module.`` prefix. With
    `prefix` (e.g. ``'backbone.'``) only keys under it are kept, prefix removed; without it a
    ``backbone.`` prefix is stripped automatically when no top-level key is a backbone key.
    """
    return backbone_part(unwrap(checkpoint)[0], prefix)


def backbone_part(sd: StateDict, prefix: Optional[str]) -> StateDict:
    """extract_state_dict on an already unwrapped state dict."""
    if prefix is None and not any(is_backbone_key(k) for k in sd):
        if any(k.startswith('backbone.') for k in sd):
            prefix = 'backbone.'
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        picked = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not picked:
            raise ValueError(f'No key in the checkpoint starts with prefix {prefix!r}')
        print_log(f'PVT: took {len(picked)} tensors under {prefix!r} (the rest of the model, '
                  f'{len(sd) - len(picked)} tensors, is not the backbone\'s)', logger='current')
        sd = picked
    return OrderedDict(sd)


def convert_to_mmpvt(state_dict: StateDict, classifier: bool = False) -> Conversion:
    """Any known layout of either family -> mmpvt's (ValueError naming example keys if it is
    neither family, or the first entry that is not a tensor).

    classifier: False (a backbone for dense prediction): the classification-only entries are
    dropped (named in ``dropped``). True: they are kept in mmpvt's names: a v1 classifier's
    ``cls_token``, final ``norm`` and the class token's row of the last position table, and the
    linear head of either family as ``head.weight``/``head.bias``.
    """
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise ValueError(f'the state dict entry {key!r} holds a {type(value).__name__} '
                             f'({str(value)[:40]!r}), expected a tensor')
    family, layout = identify(state_dict)
    converted, dropped = _BY_NAME[family].TO_MMPVT[layout](state_dict, classifier=classifier)
    return Conversion(converted, family, layout, dropped)


# The linear head of an mmpretrain ImageClassifier (LinearClsHead's layer ``fc``).
CLASSIFIER_HEAD = 'head.fc.'
HEAD_KEY = re.compile(r'^head\.(weight|bias)$')


def convert_classifier(state_dict: StateDict) -> Conversion:
    """A whole ImageNet classifier of any known layout -> the state dict of an mmpretrain
    ``ImageClassifier`` with our backbone: ``backbone.<mmpvt key>`` and ``head.fc.{weight,bias}``
    (dropped: nothing)."""
    converted = convert_to_mmpvt(state_dict, classifier=True)
    out: StateDict = OrderedDict(
        (CLASSIFIER_HEAD + k[len('head.'):] if HEAD_KEY.match(k) else 'backbone.' + k, v)
        for k, v in converted.state_dict.items())
    return converted._replace(state_dict=out)


def infer_arch(state_dict: StateDict, family: str) -> dict:
    """dict(arch=..., name=...) of the `family` model an mmpvt-layout state dict fits."""
    return _BY_NAME[family].infer_arch(state_dict)
