# No weight decay on PVTv2's LayerNorms in Mask2Former, as mmdet's and mmseg's Swin Mask2Former
# configs do for Swin's. The stock recipe says so with norm_decay_mult=0, but mmengine applies it
# only to parameters that match no custom key, and every backbone parameter matches 'backbone'
# (lr x0.1): one key per LayerNorm, longer than 'backbone' so that it wins, at the backbone's lr.
# Read as `{{_base_.pvt_v2_b2_norm_keys}}` (keys prefixed so that this file can sit beside an
# mmdet/mmseg base as a second `_base_`).


def _norm_keys(depths):
    """{key: multipliers} for the LayerNorms of a PVTv2 with `depths` layers per stage."""
    norm = dict(lr_mult=0.1, decay_mult=0.0)
    keys = {
        f'backbone.stages.{stage}.{name}': norm
        for stage in range(4)
        for name in ('patch_embed.norm', 'norm')
    }
    keys.update({
        f'backbone.stages.{stage}.blocks.{block}.{name}': norm
        for stage, num_blocks in enumerate(depths)
        for block in range(num_blocks)
        for name in ('norm', 'attn.norm')
    })  # 'norm': norm1 and norm2
    return keys


pvt_v2_b2_norm_keys = _norm_keys([3, 4, 6, 3])
pvt_v2_b5_norm_keys = _norm_keys([3, 6, 40, 3])
