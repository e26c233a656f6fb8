"""mmpvt.engine.CheckpointFitHook: what the Runner loads is fitted to the model first."""
import pytest
from mmengine.config import Config

from mmpvt.engine import CheckpointFitHook
from mmpvt.models import CheckpointMismatchError
from ..helpers import REPO, build_model

pytestmark = pytest.mark.slow  # builds a whole detector


@pytest.fixture(scope='module')
def retinanet():
    cfg = Config.fromfile(f'{REPO}/configs/demo/retinanet_pvt_t.py')
    cfg.model.backbone.init_cfg = None
    return build_model(cfg)


def checkpoint_without(model, part):
    return {
        'state_dict': {
            k: v
            for k, v in model.state_dict().items() if not k.startswith(part)
        },
        'meta': {}
    }


def test_the_runner_hook_fits_what_the_runner_loads(retinanet):

    class Runner:  # what the hook reads of mmengine's Runner
        model = retinanet
        _load_from = 'epoch_12.pth'

    with pytest.raises(CheckpointMismatchError, match=r'checkpoint epoch_12\.pth does not fit'):
        CheckpointFitHook(strict=True).after_load_checkpoint(Runner(),
                                                             checkpoint_without(retinanet, 'neck.'))
    checkpoint = checkpoint_without(retinanet, 'neck.')
    CheckpointFitHook(strict=False).after_load_checkpoint(Runner(), checkpoint)
    assert set(checkpoint['state_dict']) == set(retinanet.state_dict())  # completed
