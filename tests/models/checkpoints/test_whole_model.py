"""Whole-model checkpoints fitted before loading (mmpvt.models.checkpoints.whole_model): strict
for inference, the fine-tuning way for load_from."""
import pytest
import torch
from mmengine.config import Config

from mmpvt.models import CheckpointMismatchError
from mmpvt.models.checkpoints import fit_state_dict
from ...helpers import REPO, build_model

pytestmark = pytest.mark.slow  # builds whole detectors and segmentors

RETINA = f'{REPO}/configs/demo/retinanet_pvt_t.py'
FPN = f'{REPO}/configs/demo/sem_fpn_pvt_t.py'


def demo_model(config, **changes):
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    for key, value in changes.items():
        cfg.merge_from_dict({key: value})
    return build_model(cfg)


@pytest.fixture(scope='module')
def retinanet():
    return demo_model(RETINA)


def checkpoint_of(model, drop=()):
    sd = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(tuple(drop))}
    return {'state_dict': sd, 'meta': {}}


def test_the_models_own_checkpoint_fits_and_loads_unchanged(retinanet):
    checkpoint = checkpoint_of(retinanet)
    before = dict(checkpoint['state_dict'])
    fit_state_dict(retinanet, checkpoint, 'own.pth', strict=True)
    assert list(checkpoint['state_dict']) == list(retinanet.state_dict())
    assert all(torch.equal(checkpoint['state_dict'][k], v) for k, v in before.items())


def test_a_checkpoint_without_the_head_is_an_error_naming_the_keys(retinanet):
    checkpoint = checkpoint_of(retinanet, drop=['bbox_head.'])
    message = (r'The checkpoint no_head\.pth does not fit this RetinaNet: \d+ keys missing from '
               r'the file: bbox_head\..*The file holds backbone \(\d+\), neck \(\d+\); the model '
               r'has backbone \(\d+\), neck \(\d+\), bbox_head \(\d+\)')
    with pytest.raises(CheckpointMismatchError, match=message):
        fit_state_dict(retinanet, checkpoint, 'no_head.pth', strict=True)


def test_a_segmentors_checkpoint_for_a_detector_is_an_error_saying_what_the_file_holds(retinanet):
    checkpoint = checkpoint_of(demo_model(FPN))
    with pytest.raises(
            CheckpointMismatchError,
            match=r'keys the model does not have: .*decode_head\..*The file holds '
            r'backbone \(\d+\), neck \(\d+\), decode_head \(\d+\); the model has '
            r'backbone \(\d+\), neck \(\d+\), bbox_head \(\d+\)'):
        fit_state_dict(retinanet, checkpoint, 'fpn.pth', strict=True)


def test_fine_tuning_keeps_initial_weights_for_what_does_not_fit_with_one_line(log_lines):
    model = demo_model(RETINA, **{'model.bbox_head.num_classes': 3})
    initial = model.bbox_head.retina_cls.weight.detach().clone()
    checkpoint = checkpoint_of(demo_model(RETINA))  # 4 classes: the classifier differs
    fit_state_dict(model, checkpoint, 'coco.pth', strict=False)
    assert [line for line in log_lines if line.startswith('load_from')] == [
        'load_from coco.pth: kept the initial weights of 2 tensors and skipped 0 (2 shape '
        'mismatches (file vs model): bbox_head.retina_cls.weight 36x256x3x3 vs 27x256x3x3, '
        'bbox_head.retina_cls.bias 36 vs 27)'
    ]
    sd = checkpoint['state_dict']
    assert list(sd) == list(model.state_dict())  # complete: mmengine's loader warns of nothing
    assert torch.equal(sd['bbox_head.retina_cls.weight'], initial)


COCO_NAMES = ('person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus')


@pytest.mark.parametrize(
    'config,head',
    [
        (RETINA, 'bbox_head'),
        (FPN, 'decode_head'),
        (f'{REPO}/configs/demo/mask_rcnn_pvt_t.py', 'roi_head.bbox_head'),  # its RPN predicts 1
    ],
    ids=['RetinaNet', 'SemanticFPN', 'MaskRCNN'])
def test_class_names_in_the_meta_must_be_as_many_as_the_model_predicts(config, head):
    count = Config.fromfile(config).model  # what the config says the head predicts
    for name in head.split('.'):
        count = count[name]
    count = count['num_classes']
    model = demo_model(config)
    checkpoint = checkpoint_of(model)
    checkpoint['meta'] = {'dataset_meta': {'classes': COCO_NAMES}}
    with pytest.raises(CheckpointMismatchError) as error:
        fit_state_dict(model, checkpoint, 'coco.pth', strict=True)
    assert str(error.value) == (
        'The checkpoint coco.pth names 6 classes in its meta (dataset_meta.classes: person, '
        f'bicycle, car, motorcycle, ...); this {type(model).__name__} predicts {count}. Is it '
        'the checkpoint of this config? (Its drawings and exports would name the wrong classes.)')
    checkpoint['meta']['dataset_meta']['classes'] = COCO_NAMES[:count]
    fit_state_dict(model, checkpoint, 'coco.pth', strict=True)  # as many: taken as they are
