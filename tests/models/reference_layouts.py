"""Other libraries' checkpoint layouts of an official state dict, written from the facts file
(tests/data/pvt_v2_facts.md Sec. 3), not with mmpvt's converters; mmdet's layout (both
families) is made by mmdet's own ``pvt_convert``. transformers' PVT v1 names (beyond the class
token, final norm and classifier of classification.md Sec. 1) are those its
``PvtForImageClassification`` saves; test_convert.py loads this layout into that model strictly.

``in_layout(layout, official)`` gives each; ``LAYOUT_CASES`` lists, per family, the layouts a
checkpoint may come in besides mmpvt's own (pytest parameters with ids such as 'PVTv2-timm').
"""
import re

import pytest


def mmdet_layout(official):
    """Official -> mmdet 3.x PyramidVisionTransformer(V2), by mmdet's pvt_convert."""
    from mmdet.models.backbones.pvt import pvt_convert
    return pvt_convert(official)


def timm_layout(official):
    """Official -> timm, after timm's checkpoint_filter_fn (facts 3.2); head kept."""
    out = {}
    for k, v in official.items():
        k = re.sub(r'^patch_embed1\.', 'patch_embed.', k)
        k = re.sub(r'^patch_embed(\d)\.', lambda m: f'stages.{int(m.group(1)) - 1}.downsample.', k)
        k = re.sub(r'^block(\d)\.', lambda m: f'stages.{int(m.group(1)) - 1}.blocks.', k)
        k = re.sub(r'^norm(\d)\.', lambda m: f'stages.{int(m.group(1)) - 1}.norm.', k)
        out[k.replace('dwconv.dwconv', 'dwconv')] = v
    return out


HF_RENAMES = [('attn.q.', 'attention.query.'), ('attn.proj.', 'attention.proj.'),
              ('attn.sr.', 'attention.spatial_reduction.'), ('attn.norm.', 'attention.layer_norm.'),
              ('norm1.', 'layer_norm_1.'), ('norm2.', 'layer_norm_2.'), ('mlp.fc1.', 'mlp.dense1.'),
              ('mlp.fc2.', 'mlp.dense2.')]


def transformers_layout(official, prefix='pvt_v2.'):
    """Official -> PvtV2ForImageClassification (prefix 'pvt_v2.', head as ``classifier``), or
    PvtV2Model (prefix ''), after transformers' converter (facts 3.3)."""
    out = {}
    for k, v in official.items():
        if k.startswith('head.'):
            out['classifier.' + k[5:]] = v
            continue
        m = re.match(r'^(patch_embed|norm|block)(\d)\.(.*)$', k)
        layer = f'{prefix}encoder.layers.{int(m.group(2)) - 1}.'
        rest = m.group(3)
        if m.group(1) == 'patch_embed':
            out[layer + 'patch_embedding.' + rest.replace('norm.', 'layer_norm.')] = v
        elif m.group(1) == 'norm':
            out[layer + 'layer_norm.' + rest] = v
        else:
            j, rest = rest.split('.', 1)
            out.update(hf_layer_entries(f'{layer}blocks.{j}.', rest, v, 'attention.', HF_RENAMES))
    return out


def hf_layer_entries(block, rest, v, attention, renames):
    """transformers' entries for the official layer entry `rest` (e.g. 'attn.kv.weight') of
    layer `block`: kv split into key and value (rows K first), other names renamed."""
    if rest.startswith('attn.kv.'):
        half = v.shape[0] // 2
        return {
            f'{block}{attention}key.{rest[8:]}': v[:half],
            f'{block}{attention}value.{rest[8:]}': v[half:]
        }
    for old, new in renames:
        if rest.startswith(old):
            return {block + new + rest[len(old):]: v}
    return {block + rest: v}


def transformers_model_layout(official):
    """Official -> PvtV2Model (no classifier, no prefix)."""
    return transformers_layout({
        k: v
        for k, v in official.items() if not k.startswith('head.')
    }, prefix='')


HF_V1_RENAMES = [('attn.q.', 'attention.self.query.'),
                 ('attn.sr.', 'attention.self.sequence_reduction.'),
                 ('attn.norm.', 'attention.self.layer_norm.'),
                 ('attn.proj.', 'attention.output.dense.'), ('norm1.', 'layer_norm_1.'),
                 ('norm2.', 'layer_norm_2.'), ('mlp.fc1.', 'mlp.dense1.'),
                 ('mlp.fc2.', 'mlp.dense2.')]


def transformers_v1_layout(official, prefix='pvt.'):
    """Official PVT v1 -> PvtForImageClassification (prefix 'pvt.', head as ``classifier``), or
    PvtModel (prefix '', no ``classifier``): the class token under the last patch embedding,
    the final norm as ``encoder.layer_norm``, separate key and value projections."""
    out = {}
    encoder = f'{prefix}encoder.'
    for k, v in official.items():
        if k.startswith('head.'):
            out['classifier.' + k[5:]] = v
        elif k == 'cls_token':
            out[encoder + 'patch_embeddings.3.cls_token'] = v
        elif k.startswith('norm.'):
            out[encoder + 'layer_norm.' + k[5:]] = v
        elif re.match(r'^(pos_embed|patch_embed)\d', k):
            m = re.match(r'^(pos_embed|patch_embed)(\d)\.?(.*)$', k)
            embed = f'{encoder}patch_embeddings.{int(m.group(2)) - 1}.'
            if m.group(1) == 'pos_embed':
                out[embed + 'position_embeddings'] = v
            else:
                rest = m.group(3).replace('proj.', 'projection.').replace('norm.', 'layer_norm.')
                out[embed + rest] = v
        else:
            m = re.match(r'^block(\d)\.(\d+)\.(.*)$', k)
            block = f'{encoder}block.{int(m.group(1)) - 1}.{m.group(2)}.'
            out.update(hf_layer_entries(block, m.group(3), v, 'attention.self.', HF_V1_RENAMES))
    return out


def _transformers(official):
    return (transformers_v1_layout if 'pos_embed1' in official else transformers_layout)(official)


def _transformers_model(official):
    if 'pos_embed1' not in official:
        return transformers_model_layout(official)
    return transformers_v1_layout({
        k: v
        for k, v in official.items() if not k.startswith('head.')
    }, prefix='')


_BUILD = dict(official=dict, mmdet=mmdet_layout, timm=timm_layout, transformers=_transformers,
              transformers_model=_transformers_model)


def in_layout(layout, official):
    """The official state dict `official` (either family) in another library's layout."""
    return _BUILD[layout](official)


def identified_as(layout):
    """What mmpvt must call `layout` (both transformers models are 'transformers')."""
    return 'transformers' if layout.startswith('transformers') else layout


# (smallest variant, layout): PVT v1 exists in the official, mmdet and transformers layouts
# (classifier and bare model), PVTv2 also in timm's.
LAYOUT_CASES = [
    pytest.param(arch, layout, id=f'{family}-{layout}')
    for family, arch, layouts in (('PVT', 'tiny', ('official', 'mmdet', 'transformers',
                                                   'transformers_model')),
                                  ('PVTv2', 'b0', ('official', 'mmdet', 'timm', 'transformers',
                                                   'transformers_model'))) for layout in layouts
]
# ... and those that mmpvt converts (all but the official one).
CONVERTED_LAYOUT_CASES = [p for p in LAYOUT_CASES if p.values[1] != 'official']
