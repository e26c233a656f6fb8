"""A made-up third family, written as a newcomer would add one: this module (variant table, its
own stage, encoder, one checkpoint layout, the Family record) plus the registration the tests
do. Two stages of v1's patch embedding and shared layers, no position table, and a learnt
per-channel scale after each stage (``gamma``: what tells its checkpoints apart)."""
import re
from collections import OrderedDict
from typing import Sequence, Tuple

import torch
from torch import Tensor, nn

from mmpvt.families.common import (Family, FeedForward, Layout, PVTBlock, PyramidVisionTransformer,
                                   StateDict, drop_path_schedule, parse_arch, run_blocks)
from mmpvt.families.pvt_v1 import PatchEmbed

TOY_ARCHS = {
    'toy_s':
    dict(embed_dims=(16, 32), depths=(1, 2), num_heads=(1, 2), mlp_ratios=(2, 2), sr_ratios=(2, 1)),
    'toy_m':
    dict(embed_dims=(16, 48), depths=(1, 2), num_heads=(1, 3), mlp_ratios=(2, 2), sr_ratios=(2, 1)),
}
TOY_ARCH_KEYS = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios')
PATCH_SIZES = (4, 2)


class ToyStage(nn.Module):

    def __init__(self, in_channels: int, embed_dims: int, num_heads: int, mlp_ratio: float,
                 sr_ratio: int, patch_size: int, drop_path_rates: Sequence[float]) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        hidden = int(embed_dims * mlp_ratio)
        self.blocks = nn.ModuleList(
            PVTBlock(embed_dims, num_heads, sr_ratio, FeedForward(embed_dims, hidden),
                     drop_path=rate) for rate in drop_path_rates)
        self.gamma = nn.Parameter(torch.ones(embed_dims))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x, hw = self.patch_embed(x)
        return run_blocks(self.blocks, x, hw, False) * self.gamma, hw


class Toy(PyramidVisionTransformer):
    family = 'Toy'

    def __init__(self, arch='toy_s', in_channels=3, out_indices=(0, 1), drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.0, frozen_stages=-1, with_cp=False) -> None:
        parsed = parse_arch(arch, 'Toy', TOY_ARCHS, TOY_ARCH_KEYS)
        depths = parsed['depths']
        super().__init__(
            len(depths), in_channels, out_indices, drop_rate, attn_drop_rate, drop_path_rate,
            frozen_stages, with_cp)
        self.arch_name = arch if isinstance(arch, str) else 'custom'
        channels = in_channels
        for i, rates in enumerate(drop_path_schedule(drop_path_rate, depths)):
            self.stages.append(
                ToyStage(channels, parsed['embed_dims'][i], parsed['num_heads'][i],
                         parsed['mlp_ratios'][i], parsed['sr_ratios'][i], PATCH_SIZES[i], rates))
            channels = parsed['embed_dims'][i]
        self.finish()


def authors_to_mmpvt(state_dict: StateDict, classifier: bool = False):
    """The made-up authors' names, ``toy{s}.`` (1-based) -> ``stages.{s - 1}.``."""
    return OrderedDict((re.sub(r'^toy(\d+)\.', lambda m: f'stages.{int(m.group(1)) - 1}.', k), v)
                       for k, v in state_dict.items()), []


def mmpvt_to_authors(state_dict: StateDict) -> StateDict:
    return OrderedDict((re.sub(r'^stages\.(\d+)\.', lambda m: f'toy{int(m.group(1)) + 1}.', k), v)
                       for k, v in state_dict.items())


def infer_arch(state_dict: StateDict) -> dict:
    dims = tuple(state_dict[f'stages.{s}.gamma'].numel() for s in range(2))
    name = next((n for n, a in TOY_ARCHS.items() if a['embed_dims'] == dims), None)
    return dict(arch=TOY_ARCHS.get(name), name=name)


FAMILY = Family(
    name='Toy', encoder=Toy, archs=TOY_ARCHS, default_arch='toy_s',
    marker=re.compile(r'^toy\d+\.|^stages\.\d+\.gamma$'), layouts=dict(
        official=Layout(re.compile(r'^toy\d+\.'), authors_to_mmpvt, 'toy1.gamma'),
        mmpvt=Layout(
            re.compile(r'^stages\.\d+\.'), lambda sd, classifier=False: (sd, []), 'stages.0.gamma'),
    ), to_official=mmpvt_to_authors, infer_arch=infer_arch,
    classifier=dict(backbone=dict(out_indices=(1, )), neck=dict(type='GlobalAveragePooling')))
