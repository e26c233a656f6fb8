"""Weights compute as their trainer computed: a checkpoint in mmdet's layout was trained by mmdet's
ports, whose every LayerNorm has eps 1e-6 (the authors' code: 1e-5 in patch embedding and spatial
reduction), so loading it gives the model mmdet's eps, with one log line; the authors' and other
layouts keep the authors' eps. A checkpoint saved from a model with one eps throughout records it
in its state dict's metadata, and every loader gives it back. Expected values: mmdet's own
RetinaNets, built from the zoo configs of the installed mmdet (configs/pvt/), in float64, where a
1e-5 vs 1e-6 eps shows."""
import pytest
import torch

from mmpvt.apis.convert import convert_checkpoint_file
from mmpvt.apis.runner import load_config
from mmpvt.families.layouts import unwrap
from mmpvt.models import build_backbone
from mmpvt.models.checkpoints import CheckpointMismatchError, fit_state_dict, load_checkpoint_file
from mmpvt.models.checkpoints.loading import LAYER_NORM_EPS_METADATA, saved_layer_norm_eps
from ...helpers import (build_model, by_family, load_pretrained, mmdet_zoo_model, official_weights,
                        run_main, saved_checkpoint)
from ..reference_layouts import in_layout

pytestmark = pytest.mark.parametrize('arch', by_family('tiny', 'b0'))


def layer_norm_eps(model):
    return {m.eps for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}


def test_weights_in_mmdets_layout_give_every_layer_norm_mmdets_eps(tmp_path, arch, log_lines):
    path = saved_checkpoint(tmp_path, in_layout('mmdet', official_weights(arch)))
    assert layer_norm_eps(load_pretrained(path, arch)) == {1e-6}
    assert [line for line in log_lines if 'LayerNorm eps' in line] == [
        f'{"PVT" if arch == "tiny" else "PVTv2"}: {path} is in the mmdet layout, whose code '
        'computes with LayerNorm eps 1e-06 throughout: 10 layer norms set from the authors\' eps '
        'to 1e-06, so that the weights compute as they were trained (the checkpoints saved from '
        'this model record it)'
    ]  # 4 patch embeddings + 6 reductions (2 blocks in each of 3 stages)


def test_weights_in_the_authors_layout_keep_the_authors_eps(tmp_path, arch, log_lines):
    path = saved_checkpoint(tmp_path, official_weights(arch))
    assert layer_norm_eps(load_pretrained(path, arch)) == {1e-5, 1e-6}
    assert not [line for line in log_lines if 'LayerNorm eps' in line]


def test_the_layer_norm_eps_option_sets_every_layer_norm(arch):
    # what a config gives to test or resume what was trained from mmdet's weights
    assert layer_norm_eps(build_backbone(arch, layer_norm_eps=1e-6)) == {1e-6}
    assert layer_norm_eps(build_backbone(arch)) == {1e-5, 1e-6}  # the authors'


def test_weights_converted_from_mmdets_layout_keep_mmdets_eps(tmp_path, arch):
    path = saved_checkpoint(tmp_path, in_layout('mmdet', official_weights(arch)))
    out = run_main('convert_checkpoint.py', [path, tmp_path / 'converted.pth'])
    assert out.stdout.splitlines()[-1] == (
        'its backbone was trained with LayerNorm eps 1e-06 throughout: the converted file records '
        'it, and a backbone that loads it computes with it')
    assert layer_norm_eps(load_pretrained(tmp_path / 'converted.pth', arch)) == {1e-6}


class Detector(torch.nn.Module):
    """What init_cfg and the whole-model loaders read: a model holding the backbone at
    `backbone` (a distillation teacher's too, at `teacher.backbone`, when `teacher_eps`)."""

    def __init__(self, arch, eps=None, teacher_eps=None):
        super().__init__()
        self.backbone = build_backbone(arch, layer_norm_eps=eps)
        if teacher_eps is not None:
            self.teacher = torch.nn.Module()
            self.teacher.backbone = build_backbone(arch, layer_norm_eps=teacher_eps)


def test_a_whole_detector_converted_from_mmdets_layout_records_mmdets_eps(tmp_path, arch):
    backbone = in_layout('mmdet', official_weights(arch))
    detector = {
        **{
            f'backbone.{k}': v
            for k, v in backbone.items()
        }, 'bbox_head.conv.weight': torch.zeros(4, 4, 1, 1)
    }
    path = saved_checkpoint(tmp_path, detector)
    convert_checkpoint_file(path, str(tmp_path / 'converted.pth'))
    saved = load_checkpoint_file(str(tmp_path / 'converted.pth'))
    assert saved_layer_norm_eps(unwrap(saved)[0], 'backbone.') == 1e-6
    model = Detector(arch)
    fit_state_dict(model, saved, 'converted.pth', strict=False)
    assert layer_norm_eps(model.backbone) == {1e-6}


# ---- checkpoints saved from a model with mmdet's eps record it ---------------------------------
def saved_metadata(model):
    """{module path: its metadata entry} of `model`'s state dict."""
    return dict(model.state_dict()._metadata)


def test_a_backbone_with_the_authors_eps_records_nothing(arch):
    assert all(
        LAYER_NORM_EPS_METADATA not in entry
        for entry in saved_metadata(build_backbone(arch)).values())


def test_a_state_dict_saved_with_mmdets_eps_loads_with_it(tmp_path, arch, log_lines):
    trained = build_backbone(arch, layer_norm_eps=1e-6)
    assert saved_metadata(trained)[''][LAYER_NORM_EPS_METADATA] == 1e-6
    torch.save(trained.state_dict(), tmp_path / 'backbone.pth')
    state_dict = load_checkpoint_file(str(tmp_path / 'backbone.pth'))  # mmpvt's safe loader
    model = build_backbone(arch)
    model.load_state_dict(state_dict)
    assert layer_norm_eps(model) == {1e-6}
    family = 'PVT' if arch == 'tiny' else 'PVTv2'
    assert [line for line in log_lines if 'LayerNorm eps' in line] == [
        f'{family}: the state dict was saved from a model computing with LayerNorm eps 1e-06 '
        'throughout: 10 layer norms set to 1e-06'
    ]


def test_a_backbone_initialised_from_a_detector_saved_with_mmdets_eps_takes_it(tmp_path, arch):
    torch.save({'state_dict': Detector(arch, eps=1e-6).state_dict()}, tmp_path / 'detector.pth')
    model = load_pretrained(tmp_path / 'detector.pth', arch, prefix='backbone.')
    assert layer_norm_eps(model) == {1e-6}


def test_init_cfg_takes_the_eps_of_the_backbone_under_its_prefix(tmp_path, arch):
    # the student at the authors' eps, its teacher at mmdet's
    torch.save({'state_dict': Detector(arch, teacher_eps=1e-6).state_dict()},
               tmp_path / 'distill.pth')
    student = load_pretrained(tmp_path / 'distill.pth', arch, prefix='backbone.')
    assert layer_norm_eps(student) == {1e-5, 1e-6}
    teacher = load_pretrained(tmp_path / 'distill.pth', arch, prefix='teacher.backbone.')
    assert layer_norm_eps(teacher) == {1e-6}


def test_a_ddp_wrapped_detectors_file_loads_with_its_eps_through_the_fit(tmp_path, arch):
    wrapper = torch.nn.Module()  # DDP's: every key and metadata path under 'module.'
    wrapper.module = Detector(arch, eps=1e-6)
    torch.save({'state_dict': wrapper.state_dict()}, tmp_path / 'ddp.pth')
    checkpoint = load_checkpoint_file(str(tmp_path / 'ddp.pth'))
    model = Detector(arch)
    fit_state_dict(model, checkpoint, 'ddp.pth')
    assert layer_norm_eps(model.backbone) == {1e-6}
    model.load_state_dict(checkpoint['state_dict'])  # what mmengine's loader does next
    assert layer_norm_eps(model.backbone) == {1e-6}


def test_a_state_dict_that_records_no_eps_leaves_the_models_as_it_is(arch):
    # the authors' eps records nothing (and files saved before mmpvt recorded any): a model
    # given layer_norm_eps keeps it
    model = build_backbone(arch, layer_norm_eps=1e-6)
    model.load_state_dict(build_backbone(arch).state_dict())
    assert layer_norm_eps(model) == {1e-6}


def test_a_recorded_eps_that_is_not_a_small_number_is_one_clear_error(tmp_path, arch):
    state_dict = build_backbone(arch, layer_norm_eps=1e-6).state_dict()
    state_dict._metadata[''][LAYER_NORM_EPS_METADATA] = 'large'
    torch.save(state_dict, tmp_path / 'damaged.pth')
    with pytest.raises(
            CheckpointMismatchError, match=(
                r"damaged\.pth records LayerNorm eps 'large' for its PVT(v2)? backbone; expected a "
                r'number between 0 and 1 \(is the file damaged\?\)$')):
        load_pretrained(tmp_path / 'damaged.pth', arch)


ZOO = {
    'tiny': ('pvt/retinanet_pvt-t_fpn_1x_coco.py', 'configs/retinanet/pvt_t_1x.py'),
    'b0': ('pvt/retinanet_pvtv2-b0_fpn_1x_coco.py', 'configs/retinanet/pvt_v2_b0_1x.py')
}


@pytest.mark.slow  # two RetinaNets in float64
def test_mmdets_zoo_retinanet_weights_give_mmdets_outputs_in_our_config(arch):
    zoo_config, our_config = ZOO[arch]
    theirs = mmdet_zoo_model(zoo_config).double().eval()
    ours_cfg = load_config(our_config)
    ours_cfg.model.backbone.init_cfg = None
    ours = build_model(ours_cfg).double().eval()
    authors_eps = {m: m.eps for m in ours.modules() if isinstance(m, torch.nn.LayerNorm)}
    ours.load_state_dict(theirs.state_dict(), strict=True)  # converted from mmdet's layout
    x = torch.randn(1, 3, 128, 160, dtype=torch.float64)

    def max_error():
        with torch.no_grad():
            pairs = zip(ours(x, mode='tensor'), theirs(x, mode='tensor'))
            return max(
                (a - b).abs().max().item() for mine, other in pairs for a, b in zip(mine, other))

    assert max_error() < 1e-10
    for norm, eps in authors_eps.items():  # the same weights with the authors' eps: off
        norm.eps = eps
    assert max_error() > 1e-7


@pytest.mark.slow  # two RetinaNets in float64
def test_a_detector_fine_tuned_from_mmdets_weights_tests_as_it_trained(tmp_path, arch):
    """Our config loads mmdet's zoo RetinaNet (mmdet's eps; random weights: the numerics are the
    point), a checkpoint is saved as the Runner saves one, and the model tools/test.py builds
    from the config loads it as the Runner does (our fit hook, then mmengine's loader): mmdet's
    eps, and the saved model's outputs exactly."""
    from mmengine.runner.checkpoint import (_load_checkpoint_to_model, save_checkpoint,
                                            weights_to_cpu)
    zoo_config, our_config = ZOO[arch]
    cfg = load_config(our_config)
    cfg.model.backbone.init_cfg = None
    trained = build_model(cfg).double().eval()
    trained.load_state_dict(mmdet_zoo_model(zoo_config).double().state_dict())
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': weights_to_cpu(trained.state_dict()), 'meta': {}}, path)
    tested = build_model(cfg).double().eval()
    checkpoint = load_checkpoint_file(path)
    fit_state_dict(tested, checkpoint, path)
    _load_checkpoint_to_model(tested, checkpoint)
    assert layer_norm_eps(tested.backbone) == {1e-6}
    x = torch.randn(1, 3, 128, 160, dtype=torch.float64)
    with torch.no_grad():
        for ours, theirs in zip(tested(x, mode='tensor'), trained(x, mode='tensor')):
            assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
