#!/usr/bin/env python
"""Whole-model inference time per image of a detection or segmentation config, as the paper's
Table 11 measured it (batch 1, the config's test pipeline, 5 warm-up images, then --images timed;
forward and post-processing):

    python tools/analysis/benchmark_latency.py configs/retinanet/pvt_s_1x_640.py --images 200 \\
        [--checkpoint CKPT] [--device cuda]
"""
import argparse
import os
import sys

import torch

# mmpvt_tools is not installed with mmpvt: it lives in the repository root
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from mmpvt.apis.cli import run_tool  # noqa: E402
from mmpvt_tools.benchmarks import latency  # noqa: E402
from mmpvt_tools.benchmarks.options import add_options  # noqa: E402
from mmpvt_tools.measure import save_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the detection or segmentation config to time')
    parser.add_argument('--checkpoint', help='its weights, loaded strictly (default: random)')
    parser.add_argument('--images', type=int, default=latency.PAPER_IMAGES,
                        help=f'timed images after {latency.WARMUP_IMAGES} warm-up ones')
    add_options(parser, 'device', 'amp', 'threads', 'json')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    def measure():  # a bad config, checkpoint or device is one line and exit code 1
        report = latency.measure_latency(args.config, args.checkpoint, args.device, args.images,
                                         amp=args.amp)
        save_report(report, args.json)
        print(latency.format_report(report))
        print(f'report written to {args.json}')

    return run_tool('benchmark_latency', measure)


if __name__ == '__main__':
    sys.exit(main())
