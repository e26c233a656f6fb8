#!/usr/bin/env python
"""mmpvt's PVT / PVTv2 vs mmdet's PyramidVisionTransformer / PyramidVisionTransformerV2, identical
weights, same run, interleaved: forward and forward+backward latency, peak memory, achieved
GFLOP/s against the machine's matmul throughput, the largest feature difference.

    python tools/analysis/benchmark_backbone.py --arch small b2 \\
        --shapes 224x224 512x512 800x1333 [--batch 1] [--repeats 5] [--device cpu|cuda] \\
        [--amp bf16|fp16] [--json out.json] [--plot out.png]
"""
import argparse
import os
import sys

import torch

# mmpvt_tools is not installed with mmpvt: it lives in the repository root
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from mmpvt_tools.benchmarks import backbone  # noqa: E402
from mmpvt_tools.benchmarks.options import add_options, apply_device_and_threads  # noqa: E402
from mmpvt_tools.measure import save_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, 'arch', 'shapes', 'batch', 'warmup', 'repeats', 'device', 'amp', 'threads',
                'no_memory', 'json')
    parser.add_argument('--plot', help='PNG of latency vs input size')
    args = parser.parse_args(argv)
    apply_device_and_threads(parser, args)
    print(f'device {args.device}, {torch.get_num_threads()} threads, amp {args.amp or "off"}, '
          f'warm-up {args.warmup}, repeats {args.repeats}')
    print(backbone.HEADER)
    report = backbone.run_benchmark(args.arch, args.shapes, args.batch, args.warmup, args.repeats,
                                    args.device, args.amp, memory=not args.no_memory)
    save_report(report, args.json)
    print(f'machine fp32 matmul: {report["matmul_fp32_gflops"]:.1f} GFLOP/s; '
          f'report written to {args.json}')
    print('\n'.join(backbone.summary_lines(report)))
    if args.plot:
        print(f'plot written to {backbone.plot(report, args.plot)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
