import json
import os

import pytest
import torch

TESTS = os.path.dirname(os.path.abspath(__file__))
# A copy of ../shared/reference/official_pvt_v1_checkpoint_keys.json (facts about the official
# whai362/PVT checkpoints), so the suite runs wherever the repository is cloned.
OFFICIAL_KEYS_JSON = os.path.join(TESTS, 'data', 'official_pvt_v1_checkpoint_keys.json')


@pytest.fixture(scope='session')
def official_keys():
    """{variant: [(key, shape), ...]} of the official ImageNet checkpoints, in file order."""
    with open(OFFICIAL_KEYS_JSON) as f:
        return {k: [(name, tuple(shape)) for name, shape in v] for k, v in json.load(f).items()}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
