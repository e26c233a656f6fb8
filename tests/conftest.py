import json
import logging
import os

import pytest
import torch
from mmengine.logging import MMLogger

TESTS = os.path.dirname(os.path.abspath(__file__))
# A copy of ../shared/reference/official_pvt_v1_checkpoint_keys.json (facts about the official
# whai362/PVT checkpoints), so the suite runs wherever the repository is cloned.
OFFICIAL_KEYS_JSON = os.path.join(TESTS, 'data', 'official_pvt_v1_checkpoint_keys.json')
# ... and of ../shared/reference/official_pvt_v2_checkpoint_keys.json (the seven PVTv2 releases).
OFFICIAL_V2_KEYS_JSON = os.path.join(TESTS, 'data', 'official_pvt_v2_checkpoint_keys.json')


def _read_key_table(path):
    with open(path) as f:
        return {k: [(name, tuple(shape)) for name, shape in v] for k, v in json.load(f).items()}


@pytest.fixture(scope='session')
def official_keys():
    """{variant: [(key, shape), ...]} of the official PVT v1 ImageNet checkpoints, in file order."""
    return _read_key_table(OFFICIAL_KEYS_JSON)


@pytest.fixture(scope='session')
def official_v2_keys():
    """{variant: [(key, shape), ...]} of the official PVTv2 ImageNet checkpoints (head included)."""
    return _read_key_table(OFFICIAL_V2_KEYS_JSON)


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: builds whole detectors/segmentors, trains, or runs the tools in '
        'subprocesses; `make test-fast` (pytest -m "not slow") leaves these out')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


REPO = os.path.dirname(TESTS)


@pytest.fixture(scope='session')
def tiny_shapes(tmp_path_factory):
    """A tiny synthetic shapes dataset (8 training / 4 validation images of 96x128)."""
    from mmpvt.demo_data import generate
    root = tmp_path_factory.mktemp('data') / 'shapes'
    generate(str(root), num_train=8, num_val=4, img_size=(96, 128), max_objects=3,
             size_range=(24, 64))
    return root


def registry_for(cfg):
    """mmdet's or mmseg's MODELS registry, after entering the config's default scope."""
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    return MODELS


def build_model(cfg):
    """The model of an mmengine Config; deep-copied because some heads (DETRHead) write into
    the config dict they are given."""
    import copy
    return registry_for(cfg).build(copy.deepcopy(cfg.model))


def run_tool(args, env=None, timeout=600, check=True):
    """Run a command from the repository root with this interpreter; returns CompletedProcess."""
    import subprocess
    import sys
    full_env = dict(os.environ, PYTHON=sys.executable, PYTHONUNBUFFERED='1', **(env or {}))
    full_env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + full_env.get('PATH', '')
    cmd = [sys.executable, *args] if args[0].endswith('.py') else list(args)
    result = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'{cmd} failed ({result.returncode}):\n{result.stdout[-3000:]}\n'
                             f'{result.stderr[-3000:]}')
    return result


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
