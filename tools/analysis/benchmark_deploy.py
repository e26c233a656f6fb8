#!/usr/bin/env python
"""Forward latency of eager PyTorch, torch.compile and onnxruntime (CPU), side by side, for each
--arch backbone and (with --retinanet) RetinaNet + PVT of that size up to its head; CPU, batch 1,
fp32:

    python tools/analysis/benchmark_deploy.py --arch small --shapes 512x512 800x1333 --retinanet
"""
import argparse
import os
import sys

import torch

# mmpvt_tools is not installed with mmpvt: it lives in the repository root
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from mmpvt_tools.benchmarks import deploy  # noqa: E402
from mmpvt_tools.benchmarks.options import add_options, apply_device_and_threads  # noqa: E402
from mmpvt_tools.measure import save_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, 'arch', 'shapes', 'warmup', 'repeats', 'threads', 'json')
    parser.add_argument('--retinanet', action='store_true',
                        help='also RetinaNet + the --arch backbone (v1 archs)')
    args = parser.parse_args(argv)
    apply_device_and_threads(parser, args)
    print(f'cpu, {torch.get_num_threads()} threads, warm-up {args.warmup}, repeats '
          f'{args.repeats}; forward only, batch 1, fp32')
    rows = deploy.run_all(args.arch, args.shapes, args.warmup, args.repeats, args.retinanet,
                          log=lambda line: print(line, flush=True))
    save_report(dict(results=rows), args.json)
    print(f'report written to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
