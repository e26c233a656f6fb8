"""Other libraries' checkpoint layouts of an official state dict, written from the facts file
(../shared/reference/pvt_v2.md Sec. 3), not with mmpvt's converters; mmdet's layout (both
families) is made by mmdet's own ``pvt_convert``.

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
              ('norm1.', 'layer_norm_1.'), ('norm2.', 'layer_norm_2.'),
              ('mlp.fc1.', 'mlp.dense1.'), ('mlp.fc2.', 'mlp.dense2.')]


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
            block = f'{layer}blocks.{j}.'
            if rest.startswith('attn.kv.'):
                half = v.shape[0] // 2
                out[block + 'attention.key.' + rest[8:]] = v[:half]
                out[block + 'attention.value.' + rest[8:]] = v[half:]
                continue
            for old, new in HF_RENAMES:
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            out[block + rest] = v
    return out


def transformers_model_layout(official):
    """Official -> PvtV2Model (no classifier, no prefix)."""
    return transformers_layout({k: v for k, v in official.items() if not k.startswith('head.')},
                               prefix='')


_BUILD = dict(official=dict, mmdet=mmdet_layout, timm=timm_layout,
              transformers=transformers_layout, transformers_model=transformers_model_layout)


def in_layout(layout, official):
    """The official state dict `official` in another library's layout."""
    return _BUILD[layout](official)


def identified_as(layout):
    """What mmpvt must call `layout` (both transformers models are 'transformers')."""
    return 'transformers' if layout.startswith('transformers') else layout


# (smallest variant, layout): PVT v1 exists in the official and mmdet layouts, PVTv2 also in
# timm's and transformers' (classifier and bare model).
LAYOUT_CASES = [pytest.param(arch, layout, id=f'{family}-{layout}')
                for family, arch, layouts in (
                    ('PVT', 'tiny', ('official', 'mmdet')),
                    ('PVTv2', 'b0', ('official', 'mmdet', 'timm', 'transformers',
                                     'transformers_model')))
                for layout in layouts]
# ... and those that mmpvt converts (all but the official one).
CONVERTED_LAYOUT_CASES = [p for p in LAYOUT_CASES if p.values[1] != 'official']
