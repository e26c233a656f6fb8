import functools
import logging
import os

import pytest
import torch
from mmengine.logging import MMLogger

from .helpers import read_key_table


@pytest.fixture(scope='session')
def official_keys():
    """{variant: [(key, shape), ...]} of the official PVT v1 ImageNet checkpoints, in file order
    (tests/data/official_pvt_v1_checkpoint_keys.json)."""
    return read_key_table('PVT')


@pytest.fixture(scope='session')
def official_v2_keys():
    """{variant: [(key, shape), ...]} of the official PVTv2 ImageNet checkpoints (head included;
    tests/data/official_pvt_v2_checkpoint_keys.json)."""
    return read_key_table('PVTv2')


def _parse_package_metafiles_once():
    """mmengine's Config resolves each ``mmdet::``/``mmseg::``/``mmpretrain::`` base path by
    parsing all of that package's metafiles (``<package>/.mim/model-index.yml`` and the 50-100
    metafiles it lists: 0.25-1 s per path, most of a config's load time). They are
    installed files, unchanged during a session: each is parsed once (the same objects are
    returned; mmengine only reads them)."""
    import mmengine.config.utils as config_utils
    load = config_utils.load
    parsed = functools.lru_cache(maxsize=None)(load)
    marker = os.sep + '.mim' + os.sep

    def load_metafile_once(file, *args, **kwargs):
        if not args and not kwargs and isinstance(file, str) and marker in file \
                and file.endswith(('.yml', '.yaml')):
            return parsed(file)
        return load(file, *args, **kwargs)

    config_utils.load = load_metafile_once


def pytest_configure(config):
    """Each installed package's metafiles are parsed once per session (see above). Under
    pytest-xdist (``make test``: one worker per core) each worker, and each tool it
    runs, computes on one thread: two workers of two threads each on two cores spend their time
    waiting for each other (measured: a PVT-T RetinaNet training step took 2-3x longer)."""
    _parse_package_metafiles_once()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        torch.set_num_threads(1)
        for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
            os.environ[name] = '1'  # inherited by the subprocesses of run_command


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope='session')
def tiny_shapes(tmp_path_factory):
    """A tiny synthetic shapes dataset (8 training / 4 validation images of 96x128)."""
    from mmpvt_tools.demo_data import generate
    root = tmp_path_factory.mktemp('data') / 'shapes'
    generate(
        str(root), num_train=8, num_val=4, img_size=(96, 128), max_objects=3, size_range=(24, 64))
    return root


@pytest.fixture
def log_lines():
    """Messages sent to mmengine's current logger during the test."""
    lines = []

    class Collect(logging.Handler):

        def emit(self, record):
            lines.append(record.getMessage())

    logger = MMLogger.get_current_instance()
    handler = Collect(level=logging.DEBUG)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)
