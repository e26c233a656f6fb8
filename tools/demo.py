#!/usr/bin/env python
"""Train and evaluate PVT-T RetinaNet on the bundled synthetic shapes, on CPU (the README's job).

    python tools/demo.py [--full | --config CONFIG | --figure5] [--data data/shapes]
        [--work-dir DIR] [--resume] [--verbose] [--cfg-options key=value ...]

Makes the data in --data if it is missing (300 training + 60 validation images of 256x256, a few
seconds), trains, evaluates on the validation images and writes predictions.png (ground truth |
prediction) into the work dir. The default is the short run, configs/demo/retinanet_pvt_t_quick.py
(about 4.5 min on 2 Xeon cores, 8 on a slower machine); --full trains
configs/demo/retinanet_pvt_t.py, the longer schedule on bigger images (about 13 min there, 25 on
a slower machine). The terminal shows one line per phase and mmengine's progress lines; the
config, the environment and everything else mmengine logs are in the log file in the work dir
(--verbose: on the terminal too).
--figure5 is the PVT paper's Figure 5 in miniature: RetinaNet + PVTv2-B0 with its backbone from
the shape classifier of configs/demo/cls_pvt_v2_b0.py (trained first, about 1.5 min, unless
work_dirs/cls_pvt_v2_b0 has its last checkpoint) against the same detector from scratch, both
validated after every epoch (configs/demo/retinanet_pvt_v2_b0_quick*.py); draws their AP per
epoch into WORK_DIR/curves.png (default work_dirs/figure5) and prints the values.
Ctrl-C stops it; run the same command with --resume to continue from the last checkpoint.
"""
import warnings

# Known third-party warnings that say nothing about the demo, silenced before mmengine/mmdet are
# imported (some are raised at import time); (message regex, category, module regex), the module
# being the one the warning is attributed to. pkg_resources' is raised when mmengine imports it
# (attributed to mmengine.utils.package_utils, or to importlib when an import_module() call pulls it
# in); mmseg warns that the visualization hook of a config that does not draw will not draw;
# mmengine's visualizer, drawing a predicted box or its label that reaches past the image border.
KNOWN_WARNINGS = (
    (r'pkg_resources is deprecated as an API', UserWarning,
     r'(mmengine|mmcv|mmdet|mmseg|importlib|pkg_resources)(\.|$)'),
    (r'Warning: The (bbox|polygon) is out of bounds, the drawn \w+ may not be in the image',
     UserWarning, r'mmengine\.visualization\.visualizer'),
    (r'The draw is False, it means that the hook for visualization will not take effect',
     UserWarning, r'mmseg\.engine\.hooks\.visualization_hook'),
)


def silence_known_warnings():
    for message, category, module in KNOWN_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category, module=module)


silence_known_warnings()

import argparse  # noqa: E402
import os  # noqa: E402
import os.path as osp  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# mmpvt_tools is not installed with mmpvt: it lives in the repository root
sys.path.insert(0, REPO)
QUICK_CONFIG = 'configs/demo/retinanet_pvt_t_quick.py'
FULL_CONFIG = 'configs/demo/retinanet_pvt_t.py'
FIGURE5_DIR = 'work_dirs/figure5'
CLASSIFIER_DIR = 'work_dirs/cls_pvt_v2_b0'


def _say(line: str) -> None:
    print(f'[demo] {line}', flush=True)


def resume_command(argv) -> str:
    """The command that continues this run: the same arguments plus --resume."""
    args = [a for a in argv if a != '--resume'] + ['--resume']
    if os.environ.get('MMPVT_DEMO_VIA') == 'make':
        return f'make demo ARGS={shlex.quote(shlex.join(args))}'
    return shlex.join(['python', 'tools/demo.py', *args])


def print_summary(result: dict, seconds: float) -> None:
    """The closing lines: the metrics as the evaluator names them (a classifier's accuracies,
    mmpretrain's ``accuracy/top1`` / ``accuracy/top5``, in percent), and the picture with the
    captions its tiles got (a classifier's tile is one image with both written on it)."""
    classifier = result['default_scope'] == 'mmpretrain'
    print('\n' + '=' * 60 + f'\nFinal metrics (validation split, {result["num_test_images"]} '
          f'images):')
    if not result['metrics']:
        print('  none: the model made no prediction above its score threshold (train longer)')
    width = max((len(k) for k in result['metrics']), default=0)
    for key, value in result['metrics'].items():
        if not isinstance(value, float):
            print(f'  {key:<{width}}  {value}')
        elif classifier and key.startswith('accuracy/'):
            print(f'  {key:<{width}}  {value:.2f} %')
        else:
            print(f'  {key:<{width}}  {value:.4f}')
    print(
        f'checkpoint:  {result["checkpoint"]}\n'
        f'predictions: {result["picture"]}  (each tile: {" | ".join(result["captions"])})\n'
        f'log:         {result["log_file"]}\n'
        f'time:        {seconds // 60:.0f} min {seconds % 60:.0f} s', flush=True)


def print_figure5_summary(result: dict, seconds: float) -> None:
    runs = result['runs'].values()
    print(
        '\n' + '=' * 60 + f'\nValidation AP per epoch (validation split, '
        f'{result["num_test_images"]} images):\n{result["table"]}\n'
        f'curves:      {result["picture"]}\n'
        f'backbone:    {result["classifier"]}\n'
        f'runs:        {", ".join(r["work_dir"] for r in runs)}  (predictions.png, logs)\n'
        f'time:        {seconds // 60:.0f} min {seconds % 60:.0f} s', flush=True)


def _main(argv) -> int:
    from mmengine.config import DictAction

    from mmpvt_tools.demo import run_demo
    from mmpvt_tools.figure5 import run_figure5

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        '--full', action='store_true',
        help=f'the longer run: {FULL_CONFIG} (6 epochs at 256 px; about 13 min '
        f'on 2 Xeon cores, 25 min on a slower machine) instead of '
        f'{QUICK_CONFIG}')
    parser.add_argument(
        '--config', help=f'any config (default: {QUICK_CONFIG}, or '
        f'{FULL_CONFIG} with --full)')
    parser.add_argument(
        '--figure5', action='store_true',
        help="the paper's Figure 5 in miniature: RetinaNet + PVTv2-B0 from the "
        'demo classifier (trained first if missing) vs from scratch, AP '
        'per epoch -> WORK_DIR/curves.png (about 10 min); --cfg-options '
        'go to both detectors')
    parser.add_argument('--data', default='data/shapes', help='dataset dir (made if missing)')
    parser.add_argument('--work-dir', help=f'default: work_dirs/<config name> ({FIGURE5_DIR} '
                        'with --figure5)')
    parser.add_argument('--resume', action='store_true',
                        help='continue an interrupted run from its last complete checkpoint')
    parser.add_argument(
        '--verbose', action='store_true',
        help="show all of mmengine's output (config, environment, hooks) on "
        "the terminal too")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config settings, as in tools/train.py')
    args = parser.parse_args(argv)
    if args.full and args.config:
        parser.error('--full chooses the config: give --full or --config, not both')
    if args.figure5 and (args.full or args.config):
        parser.error('--figure5 runs its own configs: give --figure5 without --full/--config')
    start = time.time()
    if args.figure5:
        result = run_figure5(args.data, args.work_dir or FIGURE5_DIR, CLASSIFIER_DIR,
                             osp.join(REPO, 'configs', 'demo'), args.cfg_options,
                             resume=args.resume, quiet=not args.verbose, say=_say)
        print_figure5_summary(result, time.time() - start)
        return 0
    config = args.config or osp.join(REPO, FULL_CONFIG if args.full else QUICK_CONFIG)
    result = run_demo(config, args.data, args.work_dir, args.cfg_options, resume=args.resume,
                      quiet=not args.verbose, say=_say)
    print_summary(result, time.time() - start)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _main(argv)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt this
        print(
            f'\n[demo] interrupted; continue from the last checkpoint with: '
            f'{resume_command(argv)}', file=sys.stderr, flush=True)
        return 130


if __name__ == '__main__':
    sys.exit(main())
