#!/usr/bin/env python
"""Parameters and GFLOPs (multiply-adds, attention included) of a PVT/PVTv2 backbone or a config's
model, counted as the paper's authors did (--protocol paper, the default) or as fvcore does.

    python tools/get_flops.py small                      # PVT-S backbone at 224x224
    python tools/get_flops.py b2_li                      # PVTv2-B2-Li backbone at 224x224
    python tools/get_flops.py configs/retinanet/pvt_s_1x.py --shape 800 1333
    python tools/get_flops.py configs/retinanet/pvt_s_1x.py --shape 1280 800  # paper: 285.8
    python tools/get_flops.py configs/retinanet/pvt_s_1x.py --shape 960 640   # paper: 157.2
    python tools/get_flops.py configs/imagenet/pvt_s_300e.py   # the classifier at 224x224
    python tools/get_flops.py configs/trans2seg/pvt_s_40k.py \
        --cfg-options model.decode_head.prune_unused=False
"""
import argparse
import os
import os.path as osp
import sys

# mmpvt_tools is not installed with mmpvt: it lives in the repository root
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmpvt.apis.cli import ConfigOptions  # noqa: E402
from mmpvt.families import arch_names  # noqa: E402
from mmpvt_tools.flops import PROTOCOLS, backbone_complexity, config_complexity  # noqa: E402
from mmpvt_tools.measure import MAX_SIDE, MIN_SIDE  # noqa: E402

ARCHS = arch_names()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('target', help=f'a config file or a PVT arch {ARCHS}')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='input size (default: 224 224 for an arch or a classification '
        'config, 800 1333 for a detection config, 512 512 for a '
        'segmentation config)')
    parser.add_argument(
        '--protocol', choices=PROTOCOLS, default='paper',
        help="what counts: 'paper' = the authors' mmcv rules (conv bias, no "
        "GELU/softmax/interpolation, 1000 proposals), 'fvcore' = fvcore's")
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, metavar='KEY=VALUE',
                        help='override config entries first (a config target only)')
    args = parser.parse_args(argv)
    if args.shape and not all(MIN_SIDE <= side <= MAX_SIDE for side in args.shape):
        parser.error(f'--shape sides must be {MIN_SIDE} to {MAX_SIDE} pixels, got '
                     f'{args.shape[0]} {args.shape[1]}')
    if args.target in ARCHS:
        if args.cfg_options:
            parser.error('--cfg-options needs a config file, not an arch')
        r = backbone_complexity(args.target, args.shape or (224, 224), args.protocol)
        print(f'{r["model"]} at {r["shape"][0]}x{r["shape"][1]}: '
              f'{r["params"] / 1e6:.2f}M params, {r["gflops"]:.2f} GFLOPs')
    elif osp.isfile(args.target):
        r = config_complexity(args.target, args.shape, args.protocol, cfg_options=args.cfg_options)
        frozen = r['params'] != r['trainable_params']
        trainable = f'{r["trainable_params"] / 1e6:.2f}M trainable, ' if frozen else ''
        print(f'{r["model"]} at {r["shape"][0]}x{r["shape"][1]}: {r["params"] / 1e6:.2f}M params '
              f'({trainable}{r["backbone_params"] / 1e6:.2f}M backbone), {r["gflops"]:.1f} '
              f'GFLOPs ({r["backbone_gflops"]:.1f} backbone)')
    else:
        parser.error(f'{args.target!r} is neither a config file nor one of {ARCHS}')


if __name__ == '__main__':
    main()
