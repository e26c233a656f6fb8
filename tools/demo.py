#!/usr/bin/env python
"""Train and evaluate PVT-T on the bundled synthetic shapes, on CPU (the README's main job).

    python tools/demo.py [--config configs/demo/retinanet_pvt_t.py] [--data data/shapes]
        [--work-dir DIR] [--resume] [--cfg-options key=value ...]
"""
import argparse

from mmengine.config import DictAction

from mmpvt.apis.demo import run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default='configs/demo/retinanet_pvt_t.py')
    parser.add_argument('--data', default='data/shapes', help='dataset dir (made if missing)')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>')
    parser.add_argument('--resume', action='store_true',
                        help='continue an interrupted run from its last complete checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    result = run_demo(args.config, args.data, args.work_dir, args.cfg_options,
                      resume=args.resume)
    print('\n' + '=' * 60 + '\nFinal metrics (validation split):')
    if not result['metrics']:
        print('  none: the model made no prediction above its score threshold (train longer)')
    width = max((len(k) for k in result['metrics']), default=0)
    for key, value in result['metrics'].items():
        print(f'  {key:<{width}}  {value:.4f}' if isinstance(value, float) else
              f'  {key:<{width}}  {value}')
    print(f'checkpoint:  {result["checkpoint"]}\npredictions: {result["picture"]}\n'
          f'logs:        {result["work_dir"]}')


if __name__ == '__main__':
    main()
