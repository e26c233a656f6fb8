#!/usr/bin/env python
"""Convert a PVT or PVTv2 checkpoint (official whai362/PVT, mmdet 3.x, timm, transformers, or a
detector/segmentor checkpoint) to mmpvt's layout. The output is validated and written atomically.

    python tools/convert_checkpoint.py pvt_small.pth pvt_small_mmpvt.pth [--arch small]
    python tools/convert_checkpoint.py pvt_v2_b2.pth pvt_v2_b2_mmpvt.pth [--arch b2]
"""
import argparse
import sys

from mmpvt.models import PVT_ARCHS, PVTV2_ARCHS, convert_checkpoint_file


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='input checkpoint: a path or URL')
    parser.add_argument('dst', help='output .pth (written atomically)')
    parser.add_argument('--arch', choices=[*PVT_ARCHS, *PVTV2_ARCHS],
                        help='check against this variant (default: read off the weights)')
    args = parser.parse_args(argv)
    try:
        info = convert_checkpoint_file(args.src, args.dst, arch=args.arch)
    except (ValueError, KeyError, OSError) as e:  # every error of ours is a ValueError subclass
        print(f'convert_checkpoint: {e}', file=sys.stderr)
        return 1
    print(f'converted {args.src} ({info["family"]}, {info["layout"]} layout, arch {info["arch"]}, '
          f'{info["num_tensors"]} tensors) -> {args.dst}')
    if info['dropped']:
        print('dropped classification-only entries: ' + ', '.join(info['dropped']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
