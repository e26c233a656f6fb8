#!/usr/bin/env python
"""Parameters and GFLOPs (multiply-adds, attention included) of a PVT/PVTv2 backbone or a config's
model.

    python tools/get_flops.py small                      # PVT-S backbone at 224x224
    python tools/get_flops.py b2_li                      # PVTv2-B2-Li backbone at 224x224
    python tools/get_flops.py configs/retinanet/pvt_s_1x.py --shape 800 1333
    python tools/get_flops.py configs/trans2seg/pvt_s_40k.py \
        --cfg-options model.decode_head.prune_unused=False
"""
import argparse
import os.path as osp

from mmpvt.apis.cli import ConfigOptions
from mmpvt.apis.complexity import backbone_complexity, config_complexity
from mmpvt.models import PVT_ARCHS, PVTV2_ARCHS

ARCHS = [*PVT_ARCHS, *PVTV2_ARCHS]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('target', help=f'a config file or a PVT arch {ARCHS}')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size (default: 224 224 for an arch, 800 1333 for a '
                             'detection config, 512 512 for a segmentation config)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, metavar='KEY=VALUE',
                        help='override config entries first (a config target only)')
    args = parser.parse_args(argv)
    if args.target in ARCHS:
        if args.cfg_options:
            parser.error('--cfg-options needs a config file, not an arch')
        r = backbone_complexity(args.target, args.shape or (224, 224))
        print(f'{r["model"]} at {r["shape"][0]}x{r["shape"][1]}: '
              f'{r["params"] / 1e6:.2f}M params, {r["gflops"]:.2f} GFLOPs')
    elif osp.isfile(args.target):
        r = config_complexity(args.target, args.shape, args.cfg_options)
        print(f'{r["model"]} at {r["shape"][0]}x{r["shape"][1]}: {r["params"] / 1e6:.2f}M params '
              f'({r["backbone_params"] / 1e6:.2f}M backbone), {r["gflops"]:.1f} GFLOPs '
              f'({r["backbone_gflops"]:.1f} backbone)')
    else:
        parser.error(f'{args.target!r} is neither a config file nor one of {ARCHS}')


if __name__ == '__main__':
    main()
