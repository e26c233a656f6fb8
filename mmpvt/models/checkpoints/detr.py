"""mmdet 2.x DETR checkpoints (the authors' PVT-S + DETR release) -> mmdet 3.x DETR key names.

mmdet 3.0 rebuilt DETR: the transformer moved out of the head into the detector and the head's
input projection became a ``ChannelMapper`` neck. Parameter shapes and computation are unchanged
(verified by reading mmdet 2.13's ``DETRHead``/``Transformer`` with mmcv 1.3's
``BaseTransformerLayer``, and mmdet 3.3's ``DETR``/``DetrTransformerEncoder/Decoder``):

mmdet 2.x (all under ``bbox_head.``)                 mmdet 3.x
``input_proj.*`` (1x1 Conv2d)                         ``neck.convs.0.conv.*`` (ChannelMapper)
``query_embedding.weight``                            ``query_embedding.weight``
``transformer.{enc,dec}oder.layers.{i}.attentions.0``  ``{enc,dec}oder.layers.{i}.self_attn``
``transformer.decoder.layers.{i}.attentions.1``       ``decoder.layers.{i}.cross_attn``
``transformer.{enc,dec}oder.layers.{i}.ffns.0``       ``{enc,dec}oder.layers.{i}.ffn``
``transformer.{enc,dec}oder.layers.{i}.norms.{j}``    ``{enc,dec}oder.layers.{i}.norms.{j}``
``transformer.decoder.post_norm``                     ``decoder.post_norm``
``fc_cls``, ``reg_ffn``, ``fc_reg``                   unchanged (``bbox_head.``)
"""
import re
from collections import OrderedDict
from typing import Tuple

from ...families.layouts import StateDict

MMDET2_MARKER = 'bbox_head.transformer.'
_RENAMES = (
    (re.compile(r'^bbox_head\.input_proj\.'), 'neck.convs.0.conv.'),
    (re.compile(r'^bbox_head\.query_embedding\.'), 'query_embedding.'),
    (re.compile(r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.attentions\.0\.'),
     r'\1.layers.\2.self_attn.'),
    (re.compile(r'^bbox_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.1\.'),
     r'decoder.layers.\1.cross_attn.'),
    (re.compile(r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.'),
     r'\1.layers.\2.ffn.'),
    (re.compile(r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.norms\.'),
     r'\1.layers.\2.norms.'),
    (re.compile(r'^bbox_head\.transformer\.decoder\.post_norm\.'), 'decoder.post_norm.'),
)


def is_mmdet2_detr(state_dict: StateDict, prefix: str = '') -> bool:
    return any(k.startswith(prefix + MMDET2_MARKER) for k in state_dict)


def mmdet2_detr_to_mmdet3(state_dict: StateDict, prefix: str = '') -> Tuple[StateDict, int]:
    """(state dict with the mmdet 2.x DETR keys under `prefix` renamed, number renamed).

    Keys no rule matches (backbone, ``bbox_head.fc_cls`` ...) are kept as they are; an mmdet 2.x
    key left unmatched (another 2.x transformer variant) stays under ``bbox_head.transformer.``
    and is reported by the caller's key check.
    """
    out: StateDict = OrderedDict()
    renamed = 0
    for key, value in state_dict.items():
        new = key
        if key.startswith(prefix):
            rest = key[len(prefix):]
            for pattern, repl in _RENAMES:
                if pattern.match(rest):
                    new = prefix + pattern.sub(repl, rest, count=1)
                    renamed += 1
                    break
        out[new] = value
    return out, renamed
