#!/usr/bin/env python
"""Draw a logged metric against epoch (or iteration) for several runs, from mmengine's
vis_data/scalars.json in each work dir (the paper's Fig. 5: validation AP per epoch).

    python tools/plot_curves.py work_dirs/pvt_s_1x work_dirs/pvt_s_1x_scratch \\
        --keys coco/bbox_mAP --legend pretrained "random init" --out curves.png
"""
import argparse
import os
import sys

# mmpvt_tools is not installed with mmpvt: it lives in the repository root
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmpvt.apis.cli import run_tool  # noqa: E402
from mmpvt_tools.curves import plot_curves  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR',
                        help='work dirs of mmengine runs (with <timestamp>/vis_data/scalars.json)')
    parser.add_argument('--keys', nargs='+', default=['coco/bbox_mAP'],
                        help='logged scalars to draw, one panel each (default: coco/bbox_mAP)')
    parser.add_argument('--legend', nargs='+', help='a name per work dir (default: folder names)')
    parser.add_argument('--out', default='curves.png', help='the PNG (default: curves.png)')
    parser.add_argument('--title', help='a title over the panels')
    args = parser.parse_args(argv)

    def draw():
        curves = plot_curves(args.work_dirs, args.keys, args.legend, args.out, args.title)
        for c in curves:
            last = f'{c.y[-1]:.4g} at {c.x[-1]:g}' if c.x else 'no points'
            print(f'{c.key} {c.run}: {len(c.x)} points, last {last}')
        print(f'plot written to {args.out}')

    return run_tool('plot_curves', draw)


if __name__ == '__main__':
    sys.exit(main())
