#!/usr/bin/env python
"""mmpvt's PVT / PVTv2 vs mmdet's PyramidVisionTransformer / PyramidVisionTransformerV2, identical
weights, same run, interleaved.

    python tools/benchmark.py --arch small b2 --shapes 224x224 512x512 800x1333 [--batch 1]
        [--repeats 5] [--device cpu|cuda] [--amp bf16|fp16] [--json out.json] [--plot out.png]

--deploy: forward latency of eager PyTorch, torch.compile and onnxruntime (CPU), side by side,
for each --arch backbone and (with --retinanet) RetinaNet + PVT of that size up to its head:

    python tools/benchmark.py --deploy --arch small --shapes 512x512 800x1333 --retinanet

--classification: one ImageNet training step (forward, cross-entropy, backward; fp32; unless
--shapes / --batch say otherwise 224x224 and batch 32) of mmpvt's classifiers vs transformers'
PvtForImageClassification / PvtV2ForImageClassification of the same size and, with
--authors-repo, the authors' own models (classification/pvt.py, pvt_v2.py of a whai362/PVT
checkout):

    python tools/benchmark.py --classification --arch small b2 [--batch 32] [--device cuda]
        [--authors-repo PATH/TO/PVT]

--config: whole-model inference time per image as the paper's Table 11 measured it (batch 1, the
config's test pipeline, 5 warm-up images, then --images timed; forward and post-processing):

    python tools/benchmark.py --config configs/retinanet/pvt_s_1x_640.py --images 200 \
        [--checkpoint CKPT]
"""
import argparse
import os
import sys

import torch

from mmpvt.apis.benchmark import ARCHS, HEADER, plot, run_benchmark, save_report
from mmpvt.apis.cli import run_tool

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_shape(text):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'shape must look like 800x1333, got {text!r}')
    return h, w


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', nargs='+', default=['small'], choices=ARCHS,
                        help='PVT tiny..large or PVTv2 b0..b5 (mmdet has no b2_li)')
    parser.add_argument('--shapes', nargs='+', type=parse_shape,
                        default=[(224, 224), (512, 512), (800, 1333)])
    parser.add_argument('--batch', nargs='+', type=int, default=[1])
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--amp', choices=['bf16', 'fp16'], help='autocast dtype (default fp32)')
    parser.add_argument('--threads', type=int, help='torch threads (default: torch default)')
    parser.add_argument('--no-memory', action='store_true', help='skip peak-memory workers')
    parser.add_argument('--json', default='work_dirs/benchmark.json', help='report file')
    parser.add_argument('--plot', help='PNG of latency vs input size')
    parser.add_argument('--deploy', action='store_true',
                        help='eager vs torch.compile vs onnxruntime instead of mmpvt vs mmdet')
    parser.add_argument('--retinanet', action='store_true',
                        help='with --deploy: also RetinaNet + the --arch backbone (v1 archs)')
    parser.add_argument('--classification', action='store_true',
                        help="a classifier's training step, mmpvt vs transformers (and the "
                             "authors' code with --authors-repo)")
    parser.add_argument('--authors-repo', metavar='PATH',
                        help="with --classification: a checkout of whai362/PVT, whose "
                             "classification/ models are timed too")
    parser.add_argument('--config', help='time this detection/segmentation config per image')
    parser.add_argument('--checkpoint', help='with --config: its weights (default: random)')
    parser.add_argument('--images', type=int, default=2000,
                        help='with --config: timed images after 5 warm-up ones')
    args = parser.parse_args(argv)
    if args.deploy:
        return deploy_main(args)
    if args.config:
        return latency_main(args)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.classification:
        return cls_main(parser, args, sys.argv[1:] if argv is None else argv)
    print(f'device {args.device}, {torch.get_num_threads()} threads, amp {args.amp or "off"}, '
          f'warm-up {args.warmup}, repeats {args.repeats}')
    print(HEADER)
    report = run_benchmark(args.arch, args.shapes, args.batch, args.warmup, args.repeats,
                           args.device, args.amp, memory=not args.no_memory)
    save_report(report, args.json)
    print(f'machine fp32 matmul: {report["matmul_fp32_gflops"]:.1f} GFLOP/s; '
          f'report written to {args.json}')
    for e in report['results']:
        print(f"  {e['arch']} {e['shape'][0]}x{e['shape'][1]} b{e['batch']}: mmpvt forward "
              f"{e['mmpvt/forward']['achieved_gflops']:.1f} GFLOP/s "
              f"({100 * e['mmpvt/forward']['fraction_of_matmul_peak']:.0f}% of matmul), mmdet "
              f"{e['mmdet/forward']['achieved_gflops']:.1f} GFLOP/s; max |feature diff| "
              f"{e['max_abs_feature_diff']:.1e}")
    if args.plot:
        print(f'plot written to {plot(report, args.plot)}')
    return 0


def cls_main(parser, args, argv) -> int:
    from mmpvt.apis import cls_benchmark

    def given(option):
        return any(a == option or a.startswith(option + '=') for a in argv)
    # the classification defaults: 224x224, batch 32
    shapes = args.shapes if given('--shapes') else [(224, 224)]
    batches = args.batch if given('--batch') else [32]
    if len(shapes) != 1 or shapes[0][0] != shapes[0][1] or len(batches) != 1:
        parser.error('--classification takes one square --shapes and one --batch')
    print(f'device {args.device}, {torch.get_num_threads()} threads, fp32, batch {batches[0]} '
          f'at {shapes[0][0]}x{shapes[0][1]}, warm-up {args.warmup}, repeats {args.repeats}')
    names = cls_benchmark.model_names(args.authors_repo)
    if args.authors_repo:
        for arch in args.arch:  # a wrong path is an error before any model is timed
            try:
                cls_benchmark.authors_model_file(arch, args.authors_repo)
            except FileNotFoundError as e:
                parser.error(str(e))
    print(cls_benchmark.header(names))
    report = cls_benchmark.run(args.arch, batches[0], shapes[0][0], args.warmup, args.repeats,
                               args.device, memory=not args.no_memory,
                               authors_repo=args.authors_repo)
    save_report(report, args.json)
    print(f'report written to {args.json}')
    return 0


def deploy_main(args) -> int:
    import json

    from mmpvt.apis import deploy_benchmark
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'cpu, {torch.get_num_threads()} threads, warm-up {args.warmup}, repeats '
          f'{args.repeats}; forward only, batch 1, fp32')
    rows = []
    jobs = [('backbone', a) for a in args.arch]
    if args.retinanet:
        jobs += [('retinanet', a) for a in args.arch if a in ('tiny', 'small', 'medium', 'large')]
    for kind, arch in jobs:
        config = os.path.join(REPO, 'configs', 'retinanet', f'pvt_{arch[0]}_1x.py')
        for row in deploy_benchmark.run(kind, arch, args.shapes, args.warmup, args.repeats,
                                        config=config if kind == 'retinanet' else None):
            print(deploy_benchmark.format_row(row), flush=True)
            rows.append(row)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
        json.dump(dict(results=rows), f, indent=1)
    print(f'report written to {args.json}')
    return 0


def latency_main(args) -> int:
    """--config: mmpvt.apis.latency; a bad config, checkpoint or device is one line, exit 1."""
    from mmpvt.apis import latency
    if args.threads:
        torch.set_num_threads(args.threads)

    def measure():
        report = latency.measure_latency(args.config, args.checkpoint, args.device, args.images,
                                         amp=args.amp)
        save_report(report, args.json)
        print(latency.format_report(report))
        print(f'report written to {args.json}')
    return run_tool('benchmark', measure)


if __name__ == '__main__':
    sys.exit(main())
