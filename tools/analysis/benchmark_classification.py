#!/usr/bin/env python
"""One ImageNet training step (forward, cross-entropy, backward; fp32) of mmpvt's classifiers vs
transformers' PvtForImageClassification / PvtV2ForImageClassification of the same size and, with
--authors-repo, the authors' own models (classification/pvt.py, pvt_v2.py of a whai362/PVT
checkout), interleaved, with the peak memory of a step:

    python tools/analysis/benchmark_classification.py --arch small b2 [--batch 32] \\
        [--device cuda] [--authors-repo PATH/TO/PVT]
"""
import argparse
import os
import sys

import torch

# mmpvt_tools is not installed with mmpvt: it lives in the repository root
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from mmpvt_tools.benchmarks import classification  # noqa: E402
from mmpvt_tools.benchmarks.options import add_options, apply_device_and_threads  # noqa: E402
from mmpvt_tools.measure import save_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', nargs='+', default=['small'],
                        choices=list(classification.imagenet_configs()),
                        help='variants with an ImageNet config under configs/imagenet/')
    add_options(parser, 'shapes', 'batch', 'warmup', 'repeats', 'device', 'threads', 'no_memory',
                'json', shapes=[(224, 224)], batch=[32])
    parser.add_argument(
        '--authors-repo', metavar='PATH',
        help="a checkout of whai362/PVT, whose classification/ models are timed "
        "too")
    args = parser.parse_args(argv)
    shapes, batches = args.shapes, args.batch
    if len(shapes) != 1 or shapes[0][0] != shapes[0][1] or len(batches) != 1:
        parser.error('a training step is timed at one square --shapes and one --batch')
    apply_device_and_threads(parser, args)
    print(f'device {args.device}, {torch.get_num_threads()} threads, fp32, batch {batches[0]} '
          f'at {shapes[0][0]}x{shapes[0][1]}, warm-up {args.warmup}, repeats {args.repeats}')
    names = classification.model_names(args.authors_repo)
    if args.authors_repo:
        for arch in args.arch:  # a wrong path is an error before any model is timed
            try:
                classification.authors_model_file(arch, args.authors_repo)
            except FileNotFoundError as e:
                parser.error(str(e))
    print(classification.header(names))
    report = classification.run(args.arch, batches[0], shapes[0][0], args.warmup, args.repeats,
                                args.device, memory=not args.no_memory,
                                authors_repo=args.authors_repo)
    save_report(report, args.json)
    print(f'report written to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
