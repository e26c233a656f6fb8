#!/usr/bin/env python
"""Run an exported model on an image or a directory with onnxruntime and numpy only (PyTorch is
never imported) and draw the predictions.

    python tools/deploy/onnx_infer.py demo.jpg retinanet_pvt_s.onnx --out-dir onnx_out
"""
import argparse
import glob
import importlib.util
import os
import os.path as osp
import sys

import cv2

# Load mmpvt/deploy/onnx_infer.py by path: importing the mmpvt package would import torch.
_spec = importlib.util.spec_from_file_location('mmpvt_onnx_infer', osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'mmpvt', 'deploy',
    'onnx_infer.py'))
onnx_infer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(onnx_infer)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', metavar='IMAGE_OR_DIR')
    parser.add_argument('model', help='an .onnx written by tools/deploy/export_onnx.py')
    parser.add_argument('--out-dir', default='onnx_outputs')
    parser.add_argument('--score-thr', type=float, default=0.3)
    args = parser.parse_args(argv)
    if osp.isdir(args.inputs):
        images = sorted(p for p in glob.glob(osp.join(args.inputs, '*'))
                        if p.lower().endswith(('.jpg', '.jpeg', '.png', '.bmp')))
    elif osp.isfile(args.inputs):
        images = [args.inputs]
    else:
        print(f'onnx_infer: image or directory not found: {args.inputs}', file=sys.stderr)
        return 1
    if not osp.isfile(args.model):
        print(f'onnx_infer: model not found: {args.model}', file=sys.stderr)
        return 1
    try:
        model = onnx_infer.OnnxModel(args.model)
    except ValueError as e:
        print(f'onnx_infer: {e}', file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    for path in images:
        image = cv2.imread(path)
        result = model(image)
        out = osp.join(args.out_dir, osp.basename(path))
        cv2.imwrite(out, onnx_infer.draw(image, result, model.meta['classes'], args.score_thr))
        what = (f'{int((result["scores"] >= args.score_thr).sum())} detections'
                if 'scores' in result else f'classes {sorted(set(result["seg_map"].ravel()))}')
        print(f'{path}: {what} -> {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
