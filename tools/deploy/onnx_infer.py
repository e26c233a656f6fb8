#!/usr/bin/env python
"""Run an exported model on an image or a directory with onnxruntime and numpy only (PyTorch is
never imported) and write what tools/image_demo.py writes: OUT_DIR/vis/<image> (drawn as mmdet's
and mmseg's visualizers draw) and OUT_DIR/preds/<image stem>.json (detectors: labels, scores and
boxes of every detection) or OUT_DIR/pred/<image stem>_pred.png (segmentors: the class map).

    python tools/deploy/onnx_infer.py demo.jpg retinanet_pvt_s.onnx --out-dir onnx_out

A file of a directory that is no readable image, or an image a fixed-shape graph cannot take,
is skipped with a line naming it; the run ends with the count and exit status 1 if any was. Each
file is written whole or not at all: a write that fails (a full disk) stops the run with a line
naming the file, and leaves the file there before, if any, as it was.
"""
import argparse
import glob
import os.path as osp
import sys

from mmpvt_runtime import (InputSizeError, OnnxModel, OutputWriteError, output_paths, read_image,
                           save_outputs, shared_output_name, unwritable_reason)

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


def _same_dir(a: str, b: str) -> bool:
    return osp.realpath(a) == osp.realpath(b)


def out_dir_problem(inputs: str, images, out_dir: str):
    """Why `out_dir` must not be used for `images` (read from `inputs`), or None."""
    if osp.isdir(inputs) and _same_dir(out_dir, inputs):
        return (f'--out-dir {out_dir} is the input directory; choose another one, the outputs '
                'would be written among your images')
    for path in images:  # e.g. --out-dir X for the images in X/vis: drawings over the inputs
        if _same_dir(output_paths(out_dir, path)['vis'], path):
            return f'--out-dir {out_dir} would overwrite {path} with its drawing; choose another'
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', metavar='IMAGE_OR_DIR')
    parser.add_argument('model', help='an .onnx written by tools/deploy/export_onnx.py')
    parser.add_argument('--out-dir', default='onnx_outputs')
    parser.add_argument(
        '--score-thr', type=float, default=0.3,
        help='detections drawn above this score (default: 0.3); the JSON '
        'holds all of them')
    parser.add_argument('--topk', type=int, default=5,
                        help='classifiers: how many classes to print per image (default: 5)')
    args = parser.parse_args(argv)
    if osp.isdir(args.inputs):
        images = sorted(
            p for p in glob.glob(osp.join(args.inputs, '*')) if p.lower().endswith(IMAGE_SUFFIXES))
        if not images:
            print(
                f'onnx_infer: no image ({", ".join(IMAGE_SUFFIXES)}) in directory '
                f'{args.inputs}', file=sys.stderr)
            return 1
    elif osp.isfile(args.inputs):
        images = [args.inputs]
    elif osp.exists(args.inputs):
        print(
            f'onnx_infer: {args.inputs} is neither a regular file nor a directory (a FIFO, '
            'socket or device?)', file=sys.stderr)
        return 1
    else:
        print(f'onnx_infer: image or directory not found: {args.inputs}', file=sys.stderr)
        return 1
    if args.topk < 1:
        print(f'onnx_infer: --topk must be at least 1, got {args.topk}', file=sys.stderr)
        return 1
    if not 0.0 <= args.score_thr <= 1.0:  # (NaN fails too)
        print(f'onnx_infer: --score-thr must be in [0, 1], got {args.score_thr}', file=sys.stderr)
        return 1
    problem = (
        shared_output_name(images) or out_dir_problem(args.inputs, images, args.out_dir)
        or unwritable_reason(args.out_dir))
    if problem:
        print(f'onnx_infer: {problem}', file=sys.stderr)
        return 1
    if not osp.isfile(args.model):
        print(f'onnx_infer: model not found: {args.model}', file=sys.stderr)
        return 1
    try:
        model = OnnxModel(args.model, topk=args.topk)
    except ValueError as e:
        print(f'onnx_infer: {e}', file=sys.stderr)
        return 1
    skipped = 0
    for path in images:
        image, why = read_image(path)
        if image is not None:
            try:
                result = model(image)
            except InputSizeError as e:
                why = str(e).split(': ', 1)[1]
        if why:
            print(f'onnx_infer: skipped {path}: {why}', file=sys.stderr)
            skipped += 1
            continue
        try:
            written = save_outputs(args.out_dir, path, image, result, model.meta, args.score_thr)
        except OutputWriteError as e:  # a full disk: the next images would fail alike
            print(f'onnx_infer: {e}', file=sys.stderr)
            return 1
        if 'probs' in result:
            print(f'{path} -> {written["vis"]}, {written["pred"]}')
            for rank, (label, score) in enumerate(zip(result['labels'], result['scores']), 1):
                name = model.classes[label] if label < len(model.classes) else str(label)
                print(f'  {rank}. {name}  {score:.4f}')
            continue
        what = (f'{int((result["scores"] > args.score_thr).sum())} detections'
                if 'scores' in result else f'classes {sorted(set(result["seg_map"].ravel()))}')
        print(f'{path}: {what} -> {written["vis"]}, {written["pred"]}')
    if skipped:
        print(f'onnx_infer: {len(images) - skipped} done, {skipped} skipped', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
