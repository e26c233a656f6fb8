"""What the command-line tools share: the Runner options (``--cfg-options``, ``--launcher``,
``--local-rank``, ``--work-dir``) and turning an expected error into one line and exit code 1."""
import argparse
import os
import re
import sys
from typing import Callable, Optional, Sequence

import torch
from mmengine.config import DictAction

from ..fileio import WorkDirInUse, WriteFailed

# What a user's input can get wrong (a path, a value, a checkpoint that does not fit): one line.
# Anything else is a bug and keeps its traceback.
USER_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError,
               WorkDirInUse, WriteFailed, ValueError, KeyError)


class ConfigOptions(DictAction):
    """mmengine's ``--cfg-options KEY=VALUE ...``, with a clear error for an item without '='
    (DictAction itself fails with "not enough values to unpack")."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            if '=' not in item or item.startswith('='):
                parser.error(f'{option_string}: expected KEY=VALUE items, got {item!r}')
        super().__call__(parser, namespace, values, option_string)


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The options train.py and test.py share with mmdet's/mmseg's tools."""
    parser.add_argument('--work-dir', help='the directory for logs (and checkpoints)')
    parser.add_argument('--cfg-options', nargs='+', action=ConfigOptions, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_cfg.max_epochs=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument(
        '--strict-data', action='store_true',
        help='stop if a detection dataset leaves annotations or images of its '
        'annotation file out (unknown categories, invalid boxes, filtered '
        'images); without it each loss is one log line')


def parse_runner_args(parser: argparse.ArgumentParser,
                      argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))  # torch.distributed reads it
    return args


def run_tool(name: str, main: Callable[[], Optional[int]]) -> int:
    """Run a tool's `main`; an error of the user's input becomes ``name: message`` on stderr and
    exit code 1, Ctrl-C exit code 130."""
    try:
        return main() or 0
    except USER_ERRORS as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'{name}: {message}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'{name}: interrupted', file=sys.stderr)
        return 130


def check_device(device: str) -> str:
    """`device` if it is 'cpu', 'cuda' or 'cuda:N' with N present on this machine."""
    m = re.fullmatch(r'cpu|cuda(?::(\d+))?', device)
    if m is None:
        raise ValueError(f'--device must be cpu, cuda or cuda:N, got {device!r}')
    if device.startswith('cuda'):
        index = int(m.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f'--device {device}: CUDA is not available on this machine '
                             f'({torch.cuda.device_count()} CUDA devices); use cpu')
    return device
