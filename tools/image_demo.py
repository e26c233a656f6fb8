#!/usr/bin/env python
"""Draw the predictions of a PVT detector, segmentor or classifier on an image or a directory of
images, with mmdet's DetInferencer, mmseg's MMSegInferencer or mmpretrain's
ImageClassificationInferencer (chosen from the config); for a classifier, print the top-5 classes.

    python tools/image_demo.py demo.jpg configs/retinanet/pvt_s_1x.py --weights retinanet_pvt_s.pth
    python tools/image_demo.py data/shapes/images/validation configs/demo/retinanet_pvt_v2_b0.py \\
        --weights work_dirs/retinanet_pvt_v2_b0/epoch_6.pth --out-dir outputs --score-thr 0.5

    python tools/image_demo.py cat.jpg configs/imagenet/pvt_v2_b2_300e.py --weights pvt_v2_b2.pth

Writes OUT_DIR/vis/<image> (drawings; classifiers: <image stem>.png) and, for detectors,
OUT_DIR/preds/<image>.json.
"""
import argparse
import sys

from mmpvt.apis.cli import ConfigOptions, run_tool
from mmpvt.apis.inference import MAX_MEGAPIXELS, Classified, draw_predictions


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', metavar='IMAGE_OR_DIR', help='an image file or a directory')
    parser.add_argument('config', help='an mmpvt config (detection, segmentation or '
                        'classification)')
    parser.add_argument(
        '--weights', help='checkpoint (mmpvt-trained, or the authors\' mmdet 2.x '
        '/ mmseg 0.x / ImageNet release); default: none (random weights)')
    parser.add_argument('--out-dir', default='outputs', help='where to write (default: outputs)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N (default: cpu)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections drawn from this score on (default: 0.3)')
    parser.add_argument('--topk', type=int, default=5,
                        help='classifiers: how many classes to print per image (default: 5)')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument(
        '--max-megapixels', type=float, default=MAX_MEGAPIXELS,
        help='larger images are skipped with a line: the inferencers draw at '
        f'full size, which takes gigabytes (default: {MAX_MEGAPIXELS:g})')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, metavar='KEY=VALUE',
                        help='override config entries, e.g. model.test_cfg.score_thr=0.01')
    args = parser.parse_args(argv)

    def draw():
        result = draw_predictions(args.inputs, args.config, weights=args.weights,
                                  out_dir=args.out_dir, device=args.device,
                                  score_thr=args.score_thr, batch_size=args.batch_size,
                                  cfg_options=args.cfg_options, topk=args.topk,
                                  max_megapixels=args.max_megapixels)
        for i, path in enumerate(result.paths):
            print(f'drawn: {path}')
            if isinstance(result, Classified):
                for rank, (name, p) in enumerate(result.top[i], 1):
                    print(f'  {rank}. {name}  {p:.4f}')
        for path, why in result.skipped:
            print(f'image_demo: skipped {path}: {why}', file=sys.stderr)
        if result.skipped:
            print(f'image_demo: {len(result.paths)} drawn, {len(result.skipped)} skipped',
                  file=sys.stderr)
            return 1

    return run_tool('image_demo', draw)


if __name__ == '__main__':
    sys.exit(main())
