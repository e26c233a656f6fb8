#!/usr/bin/env python
"""Evaluate a checkpoint: COCO bbox/segm AP (mmdet configs) or mIoU (mmseg configs).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR] [--show-dir DIR]
        [--tta] [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os

from mmengine.config import DictAction

import mmpvt  # noqa: F401  (registers PVT; safe loading of Runner checkpoints)
from mmpvt.apis import configure_test, load_config, run_test


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation log')
    parser.add_argument('--out', help='detection: dump results to this .pkl; segmentation: '
                                      'write predicted masks to this directory')
    parser.add_argument('--show-dir', help='draw predictions into this directory')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    configure_test(cfg, args.checkpoint, out=args.out, show_dir=args.show_dir, tta=args.tta)
    metrics = run_test(cfg, out=args.out)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


if __name__ == '__main__':
    main()
