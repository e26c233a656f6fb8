#!/usr/bin/env python
"""Evaluate a checkpoint: COCO bbox/segm AP (mmdet configs), mIoU (mmseg configs) or top-1/top-5
(mmpretrain configs).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR] [--show-dir DIR]
        [--tta] [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]

The checkpoint must fit the config's model: a key it lacks or a shape that differs is an error.
"""
import argparse

import mmpvt  # noqa: F401  (registers PVT; safe loading of Runner checkpoints)
from mmpvt.apis import configure_test, exit_process, load_config, run_test
from mmpvt.apis.cli import add_runner_arguments, parse_runner_args, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='detection: dump results to this .pkl; segmentation: '
        'write predicted masks to this directory')
    parser.add_argument('--show-dir', help='draw predictions into this directory')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    add_runner_arguments(parser)
    return parse_runner_args(parser, argv)


def test(args) -> None:
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    configure_test(cfg, args.checkpoint, out=args.out, show_dir=args.show_dir, tta=args.tta,
                   strict_data=args.strict_data)
    metrics = run_test(cfg, out=args.out)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


def main(argv=None) -> int:
    return run_tool('test', lambda: test(parse_args(argv)))


if __name__ == '__main__':
    exit_process(main())
