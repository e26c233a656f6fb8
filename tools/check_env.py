#!/usr/bin/env python
"""Is this interpreter's environment exactly what tools/setup_env.sh installs, and do mmcv's ops
run where the models will run? With --device: the preflight a user runs on a GPU node before a
long job.

    python tools/check_env.py [--stack latest|oldest] [--mmcv-ops any|cuda] [REPO]
        exit 0: ready; exit 1: prints one line per problem and what to do
    python tools/check_env.py --device cuda|cpu [--report FILE] [--work-dir DIR] [--size H W]
        [--gpus N] [--skip CHECK ...]
        one PASS / FAIL / SKIP line per check (mmpvt_tools/preflight.py lists them) and a JSON
        report; exit 0: no check failed; exit 1: one did; exit 2: no such device

The preflight checks the environment against the version ranges mmpvt declares (a user's own
OpenMMLab environment), not against the pins below.

The pins are those of requirements/stacks/<stack>.txt (default: latest). REPO is the checkout mmpvt
must be imported from (default: the repository holding this script). When torch sees a GPU, mmcv's
compiled ops must also run on it (NMS, RoIAlign and the sigmoid focal loss that mmdet's RetinaNet,
ATSS and R-CNNs call for CUDA tensors): a CPU-only mmcv fails there at the first loss or NMS.
``--mmcv-ops cuda`` also demands an mmcv compiled with CUDA ops where no GPU is visible.

setup_env.sh runs it for its fast path: a venv that passes is left alone, one that fails goes
through the full install, which puts the pins back. Standard library only until the imports
(it must run in a broken environment).
"""
import argparse
import os
import re
import sys
from importlib.metadata import PackageNotFoundError, version

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACKS = os.path.join(REPO, 'requirements', 'stacks')
# in every stack, pinned or not: the test extras and mmpvt itself
PRESENT = ('ftfy', 'regex', 'pycocotools', 'pytest', 'mmpvt')
# mmcv 2.1.0's build and mmengine 0.10.x import pkg_resources, which setuptools 82 removed
SETUPTOOLS_BELOW = 82
# mmpvt_tools (the preflight's checks) lives beside tools/, not in the wheel
sys.path.insert(0, REPO)


def stack_pins(stack: str) -> dict:
    """{package: version} of the ``name==version`` lines of requirements/stacks/<stack>.txt."""
    with open(os.path.join(STACKS, f'{stack}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return dict(m.groups() for m in map(re.compile(r'([\w.-]+)==(\S+)').fullmatch, lines) if m)


def version_problems(stack: str) -> list:
    found = []

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            found.append(f'{name} is not installed')
            return None

    for name, pin in stack_pins(stack).items():
        v = installed(name)
        if v is not None and v.split('+')[0] != pin:
            found.append(f'{name} {v} is installed, {pin} is pinned')
    v = installed('setuptools')
    if v is not None and int(v.split('.')[0]) >= SETUPTOOLS_BELOW:
        found.append(f'setuptools {v} is installed, < {SETUPTOOLS_BELOW} is needed')
    for name in PRESENT:
        installed(name)
    return found


def cuda_op_problems() -> list:
    """mmcv's NMS, RoIAlign and sigmoid focal loss on CUDA tensors, each against its known
    answer (the preflight's mmcv checks); [] when they all run (or when torch sees no GPU)."""
    import torch
    if not torch.cuda.is_available():
        return []
    from mmpvt_tools.preflight import CHECKS, MMCV_CHECKS, Preflight
    checks = Preflight('cuda', work_dir='',
                       skip=[name for name, _ in CHECKS if name not in MMCV_CHECKS])
    return [result.detail for result in checks.run() if result.status == 'FAIL']


def mmcv_cuda_version() -> str:
    """The CUDA version mmcv's ops were compiled with, or 'not available' (CPU ops only)."""
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version()


def problems(repo: str, stack: str = 'latest', mmcv_ops: str = 'any') -> list:
    found = version_problems(stack)
    if found:
        return found
    try:
        import torch
        import torchvision  # its compiled ops load only beside the torch it was built for
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
        keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        if keep.tolist() != [0, 2]:
            return [f'torchvision.ops.nms returned {keep.tolist()}, not [0, 2]']
        import mmcv.ops  # noqa: F401  (compiled ops)
        import mmdet  # noqa: F401
        import mmpretrain.models  # noqa: F401  (torchvision, and transformers' modeling_utils)
        import mmseg  # noqa: F401
        from mmcv.ops import RoIAlign, nms  # noqa: F401

        import mmpvt
    except Exception as e:  # noqa: BLE001
        return [f'import failed: {type(e).__name__}: {e}']
    here = os.path.realpath(os.path.dirname(mmpvt.__file__))
    if here != os.path.realpath(os.path.join(repo, 'mmpvt')):
        found.append(f'mmpvt is imported from {here}, not from this checkout {repo}')
    from mmpvt_tools.preflight import REBUILD
    if mmcv_ops == 'cuda' and mmcv_cuda_version() == 'not available':
        found.append(f'mmcv was compiled without CUDA ops; {REBUILD}')
    return found + cuda_op_problems()


def preflight(args) -> int:
    """--device: every check of mmpvt_tools.preflight, a line each, and the JSON report."""
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        print(f'check_env: --device cuda: torch {torch.__version__} sees no CUDA device '
              f'(built for CUDA {torch.version.cuda or "none"}; CUDA_VISIBLE_DEVICES='
              f'{os.environ.get("CUDA_VISIBLE_DEVICES", "unset")}); run it on a GPU node, or '
              'give --device cpu')
        return 2
    if args.device == 'cuda' and args.gpus > torch.cuda.device_count():
        print(f'check_env: --gpus {args.gpus}: this node has {torch.cuda.device_count()} GPU(s)')
        return 2
    from mmpvt_tools.preflight import Preflight, write_report
    work_dir = args.work_dir or os.path.join('work_dirs', 'check_env', args.device)
    report = args.report or os.path.join(work_dir, 'report.json')
    checks = Preflight(args.device, work_dir, size=args.size, nproc=args.gpus, skip=args.skip)
    environment = checks.environment()
    print('check_env: ' + ', '.join(f'{k} {v}' for k, v in environment.items()), flush=True)
    results = []
    for result in checks.run():
        results.append(result)
        print(f'check_env: {result.line()} ({result.seconds:.1f} s)', flush=True)
        write_report(report, environment, results)  # a report so far, should a check hang
    failed = [r.name for r in results if r.status == 'FAIL']
    print(f'check_env: {len(results) - len(failed)} of {len(results)} checks passed or were '
          f'skipped{"; failed: " + ", ".join(failed) if failed else ""}; report: {report}')
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    stacks = sorted(name[:-4] for name in os.listdir(STACKS) if name.endswith('.txt'))
    parser.add_argument(
        '--stack', default='latest', choices=stacks,
        help='the pins to check: requirements/stacks/<stack>.txt '
        '(default: %(default)s)')
    parser.add_argument(
        '--mmcv-ops', default='any', choices=('any', 'cuda'),
        help='cuda: mmcv must have been compiled with CUDA ops, even where no '
        'GPU is visible (default: %(default)s; with a GPU they must run)')
    parser.add_argument('repo', nargs='?', metavar='REPO', default=REPO,
                        help='the checkout mmpvt must be imported from (default: %(default)s)')
    preflight_args = parser.add_argument_group('the preflight (--device)')
    preflight_args.add_argument('--device', choices=('cuda', 'cpu'),
                                help='run the preflight checks on this device')
    preflight_args.add_argument('--report', help='the JSON report (default: '
                                'WORK_DIR/report.json)')
    preflight_args.add_argument('--work-dir', help='runs and report (default: '
                                'work_dirs/check_env/DEVICE)')
    preflight_args.add_argument(
        '--size', type=int, nargs=2, default=(800, 1344), metavar=('H', 'W'),
        help='image size of the training-step and '
        'attention checks (default: 800 1344)')
    preflight_args.add_argument('--gpus', type=int, default=1,
                                help='processes of the distributed runs (default: 1)')
    preflight_args.add_argument('--skip', nargs='+', default=(), metavar='CHECK',
                                help='leave these checks out')
    args = parser.parse_args(argv)
    if args.device:
        try:
            return preflight(args)
        except ValueError as e:  # a bad --skip name
            print(f'check_env: {e}')
            return 2
    found = problems(args.repo, args.stack, args.mmcv_ops)
    for line in found:
        print(f'check_env: {line}')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
