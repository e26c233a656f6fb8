#!/usr/bin/env python
"""Train an mmdet detector, an mmseg segmentor or an mmpretrain classifier (a PVT config or any
other) with mmengine's Runner.

    python tools/train.py configs/retinanet/pvt_s_1x.py [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse

import mmpvt  # noqa: F401  (registers PVT; safe loading of Runner checkpoints)
from mmpvt.apis import configure_train, exit_process, load_config, run_train
from mmpvt.apis.cli import add_runner_arguments, parse_runner_args, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by (GPUs x batch) / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or with no value from the latest complete '
        'checkpoint in the work_dir')
    add_runner_arguments(parser)
    return parse_runner_args(parser, argv)


def train(args) -> None:
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    configure_train(cfg, resume=args.resume, amp=args.amp, auto_scale_lr=args.auto_scale_lr,
                    strict_data=args.strict_data)
    run_train(cfg)


def main(argv=None) -> int:
    return run_tool('train', lambda: train(parse_args(argv)))


if __name__ == '__main__':
    exit_process(main())
