#!/usr/bin/env python
"""Generate the synthetic shapes dataset (COCO detection/instance json + ADE20K-style masks + a
classification split of one crop per shape).

    python tools/generate_demo_data.py [--out data/shapes] [--num-train 300] [--num-val 60]
        [--size 256 256] [--max-objects 4] [--seed 0]

Configs read it through configs/_base_/datasets/demo_shapes_*.py, from $MMPVT_DEMO_DATA or
data/shapes (docs/demo.md).
"""
import argparse
import os
import sys

# mmpvt_tools is not installed with mmpvt: it lives in the repository root
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmpvt_tools.demo_data import DEFAULTS, generate, write_crops  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='data/shapes')
    parser.add_argument('--num-train', type=int, default=DEFAULTS['num_train'])
    parser.add_argument('--num-val', type=int, default=DEFAULTS['num_val'])
    parser.add_argument('--size', type=int, nargs=2, default=DEFAULTS['img_size'],
                        metavar=('H', 'W'))
    parser.add_argument('--max-objects', type=int, default=DEFAULTS['max_objects'])
    parser.add_argument('--seed', type=int, default=DEFAULTS['seed'])
    args = parser.parse_args(argv)
    params = generate(args.out, num_train=args.num_train, num_val=args.num_val,
                      img_size=tuple(args.size), max_objects=args.max_objects, seed=args.seed)
    crops = write_crops(args.out)
    print(f'dataset ready in {args.out}: {params["num_train"]} training / {params["num_val"]} '
          f'validation images of {params["img_size"][0]}x{params["img_size"][1]}, '
          f'{crops["training"]} / {crops["validation"]} crops for classification')


if __name__ == '__main__':
    main()
