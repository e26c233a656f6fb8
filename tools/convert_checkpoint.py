#!/usr/bin/env python
"""Convert a PVT or PVTv2 checkpoint (official whai362/PVT, mmdet 3.x, timm, transformers) to
mmpvt's layout. An ImageNet classifier (the authors' pvt_small.pth / pvt_v2_b2.pth, timm's,
transformers') is written as mmpretrain's ImageClassifier (backbone.*, head.fc.*), as
configs/imagenet/ builds it. A whole detector/segmentor (the authors' mmdet 2.13 / mmseg 0.13
releases) is written whole: backbone converted, mmdet 2.x DETR keys renamed, neck, heads and meta
kept. --backbone-only writes only the backbone of either. The output is validated and written
atomically.

    python tools/convert_checkpoint.py pvt_small.pth pvt_small_mmpvt.pth [--arch small]
    python tools/convert_checkpoint.py pvt_v2_b2.pth pvt_v2_b2_mmpvt.pth [--arch b2]
    python tools/convert_checkpoint.py retinanet_pvt_s_fpn_1x_coco.pth retinanet_pvt_s_mmpvt.pth
"""
import argparse
import sys

from mmpvt.apis.convert import convert_checkpoint_file, describe_conversion
from mmpvt.families import arch_names


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='input checkpoint: a path or URL')
    parser.add_argument('dst', help='output .pth (written atomically)')
    parser.add_argument('--arch', choices=arch_names(),
                        help='check against this variant (default: read off the weights)')
    parser.add_argument(
        '--backbone-only', action='store_true',
        help='of an ImageNet classifier or a whole detector/segmentor, write '
        'only the backbone')
    parser.add_argument(
        '--cast-dtypes', action='store_true',
        help='cast integer tensors where the model holds floats (default: refuse '
        'them)')
    args = parser.parse_args(argv)
    try:
        info = convert_checkpoint_file(args.src, args.dst, arch=args.arch,
                                       backbone_only=args.backbone_only,
                                       cast_dtypes=args.cast_dtypes)
    except (ValueError, KeyError, OSError) as e:  # every error of ours is a ValueError subclass
        print(f'convert_checkpoint: {e}', file=sys.stderr)
        return 1
    print(f'converted {args.src} ({describe_conversion(info)}) -> {args.dst}')
    if info['dropped']:
        print('dropped classification-only entries: ' + ', '.join(info['dropped']))
    eps = info['layer_norm_eps']
    if eps is not None:
        print(f'its backbone was trained with LayerNorm eps {eps:g} throughout: the converted '
              'file records it, and a backbone that loads it computes with it')
    return 0


if __name__ == '__main__':
    sys.exit(main())
