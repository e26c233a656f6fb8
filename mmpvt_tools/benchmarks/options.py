"""The command-line options the benchmark tools under ``tools/analysis/`` share, by name, so that
each means the same in every tool: ``add_options(parser, 'arch', 'shapes', ..., batch=[32])``."""
import argparse
from typing import Tuple

import torch

from ..measure import MAX_SIDE, MIN_SIDE
from .backbone import ARCHS


def parse_shape(text: str) -> Tuple[int, int]:
    """'800x1333' -> (800, 1333), (H, W), each side in [MIN_SIDE, MAX_SIDE]."""
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'shape must look like 800x1333, got {text!r}')
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise argparse.ArgumentTypeError(
            f'shape sides must be {MIN_SIDE} to {MAX_SIDE} pixels, got {text!r}')
    return h, w


def counting(least: int):
    """An argparse type: an integer of at least `least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}')
        if value < least:
            raise argparse.ArgumentTypeError(f'expected at least {least}, got {value}')
        return value

    return parse


# name -> add_argument keywords; the option is --name with '_' as '-'
OPTIONS = dict(
    arch=dict(
        nargs='+', default=['small'], choices=ARCHS,
        help='variants to compare (every one mmdet 3.3 ports: all but b2_li, whose linear '
        'spatial reduction mmdet lacks)'),
    shapes=dict(nargs='+', type=parse_shape, default=[(224, 224), (512, 512), (800, 1333)],
                help=f'input sizes, HxW (sides {MIN_SIDE} to {MAX_SIDE})'),
    batch=dict(nargs='+', type=counting(1), default=[1], help='batch sizes'),
    warmup=dict(type=counting(0), default=2, help='untimed calls first'),
    repeats=dict(type=counting(1), default=5, help='timed calls (the median is reported)'),
    device=dict(default='cpu', choices=['cpu', 'cuda']),
    amp=dict(choices=['bf16', 'fp16'], help='autocast dtype (default fp32)'),
    threads=dict(type=counting(1), help='torch threads (default: torch default)'),
    no_memory=dict(action='store_true', help='skip peak-memory workers'),
    json=dict(default='work_dirs/benchmark.json', help='report file'),
)


def add_options(parser: argparse.ArgumentParser, *names: str, **defaults) -> None:
    """Add the options `names` (keys of :data:`OPTIONS`) to `parser`, in that order; `defaults`
    replace the default of an option by name."""
    for name in names:
        kwargs = dict(OPTIONS[name])
        if name in defaults:
            kwargs['default'] = defaults[name]
        parser.add_argument('--' + name.replace('_', '-'), **kwargs)


def apply_device_and_threads(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse ``--device cuda`` without CUDA (a usage error); apply ``--threads``."""
    if getattr(args, 'device', 'cpu') == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.threads:
        torch.set_num_threads(args.threads)
