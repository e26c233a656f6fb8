#!/usr/bin/env python
"""Is this interpreter's environment exactly what tools/setup_env.sh installs?

    python tools/check_env.py [REPO]     # exit 0: ready; exit 1: prints every pin that drifted

REPO is the checkout mmpvt must be imported from (default: the repository holding this script).

setup_env.sh runs it for its fast path: a venv that passes is left alone, one that fails goes
through the full install, which puts the pins back. Standard library only (it must run in a
broken environment).
"""
import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version

PINS = {'torch': '2.14.1', 'torchvision': '0.29.1', 'numpy': '1.26.4', 'mmengine': '0.10.7',
        'mmcv': '2.1.0', 'mmdet': '3.3.0', 'mmsegmentation': '1.2.2', 'mmpretrain': '1.2.0',
        'timm': '1.0.31', 'transformers': '4.51.3',
        # the deploy extra (requirements/deploy.txt)
        'onnx': '1.23.2', 'onnxruntime': '1.32.0', 'onnxscript': '0.7.2'}
PRESENT = ('ftfy', 'regex', 'pycocotools', 'pytest', 'pytest-xdist', 'mmpvt')
# mmcv 2.1.0's build and mmengine 0.10.7 import pkg_resources, which setuptools 82 removed
SETUPTOOLS_BELOW = 82


def problems(repo: str) -> list:
    found = []

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            found.append(f'{name} is not installed')
            return None

    for name, pin in PINS.items():
        v = installed(name)
        if v is not None and v.split('+')[0] != pin:
            found.append(f'{name} {v} is installed, {pin} is pinned')
    v = installed('setuptools')
    if v is not None and int(v.split('.')[0]) >= SETUPTOOLS_BELOW:
        found.append(f'setuptools {v} is installed, < {SETUPTOOLS_BELOW} is needed')
    for name in PRESENT:
        installed(name)
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
        import mmpvt
        from mmcv.ops import RoIAlign, nms  # noqa: F401
    except Exception as e:  # noqa: BLE001
        return [f'import failed: {type(e).__name__}: {e}']
    here = os.path.realpath(os.path.dirname(mmpvt.__file__))
    if here != os.path.realpath(os.path.join(repo, 'mmpvt')):
        found.append(f'mmpvt is imported from {here}, not from this checkout {repo}')
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('repo', nargs='?', metavar='REPO',
                        default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help='the checkout mmpvt must be imported from (default: %(default)s)')
    found = problems(parser.parse_args(argv).repo)
    for line in found:
        print(f'check_env: {line}')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
