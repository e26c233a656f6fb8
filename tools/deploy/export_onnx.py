#!/usr/bin/env python
"""Export a PVT detector (RetinaNet, ATSS, GFL, Faster/Mask/Cascade R-CNN, DETR), segmentor
(Semantic FPN) or ImageNet classifier to ONNX, with the metadata tools/deploy/onnx_infer.py needs
to reproduce ``model.predict`` without PyTorch.

    python tools/deploy/export_onnx.py configs/retinanet/pvt_s_1x.py retinanet_pvt_s.pth \\
        retinanet_pvt_s.onnx --dynamic
    python tools/deploy/export_onnx.py configs/sem_fpn/pvt_s_40k.py fpn_pvt_s.pth fpn.onnx --dynamic
    python tools/deploy/export_onnx.py configs/mask_rcnn/pvt_s_1x.py mask_rcnn_pvt_s.pth \\
        mask_rcnn_pvt_s.onnx --dynamic   # + mask_rcnn_pvt_s.roi_bbox.onnx, .roi_mask.onnx
    python tools/deploy/export_onnx.py configs/imagenet/pvt_v2_b2_300e.py pvt_v2_b2.pth \
        pvt_v2_b2.onnx --dynamic

The graph takes the normalised, padded image; with --dynamic its batch, height and width are
symbolic (any size), else fixed to --shape. Detection outputs are the raw per-level head outputs
(anchors, decoding and NMS run in numpy); segmentation outputs the class map; classifiers the
logits (softmax and the best classes in numpy). Two-stage
detectors are three graphs (features + RPN, the bbox head's RoIs, the mask head's RoIs): the
proposals and detections between them are chosen in numpy (see mmpvt/deploy/two_stage.py and
mmpvt_runtime/two_stage.py).
"""
import argparse
import os
import sys

from mmpvt.deploy.export import export_model
from mmpvt.fileio import WriteFailed, check_writable
from mmpvt.safe_load import names_remote_checkpoint


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument(
        'checkpoint', help='any checkpoint the model loads (mmpvt-trained or '
        "the authors' mmdet 2.x / mmseg 0.x file)")
    parser.add_argument('out', help='output .onnx (written atomically)')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'),
        help='example input size (the graph size without --dynamic; default '
        '224 224 for a classifier, else 800 1344)')
    parser.add_argument('--dynamic', action='store_true', help='symbolic batch, height and width')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (>= 17; default 17)')
    parser.add_argument('--dynamo', action='store_true',
                        help="torch's dynamo exporter (opset >= 18) instead of TorchScript's")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.config):
        print(f'export_onnx: config not found: {args.config}', file=sys.stderr)
        return 1
    if not (os.path.isfile(args.checkpoint) or names_remote_checkpoint(args.checkpoint)):
        print(f'export_onnx: checkpoint not found: {args.checkpoint}', file=sys.stderr)
        return 1
    try:
        check_writable(args.out, 'out')  # said now, not after building and tracing the model
        size = 'x'.join(map(str, args.shape)) if args.shape else 'default-size'
        meta = export_model(args.config, args.checkpoint, args.out, shape=args.shape,
                            dynamic=args.dynamic, opset=args.opset, dynamo=args.dynamo)
    except (ValueError, PermissionError, IsADirectoryError, NotADirectoryError,
            WriteFailed) as e:  # a full disk: WriteFailed names the file
        print(f'export_onnx: {e}', file=sys.stderr)
        return 1
    print(f'exported {args.config} ({meta["task"]}, opset {args.opset}, '
          f'{"dynamic" if args.dynamic else "fixed " + size} input) '
          f'-> {args.out}' + ''.join(f' + {name}' for name in meta.get('graphs', {}).values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
