"""Weights compute as their trainer computed: a checkpoint in mmdet's layout was trained by mmdet's
ports, whose every LayerNorm has eps 1e-6 (the authors' code: 1e-5 in patch embedding and spatial
reduction), so loading it gives the model mmdet's eps, with one log line; the authors' and other
layouts keep the authors' eps. Expected values: mmdet's own RetinaNets, built from the zoo configs
of the installed mmdet (configs/pvt/), in float64, where a 1e-5 vs 1e-6 eps shows."""
import pytest
import torch

from mmpvt.apis.runner import load_config
from mmpvt.models import build_backbone
from mmpvt.models.checkpoints import fit_state_dict, load_checkpoint_file
from mmpvt.models.checkpoints.loading import LAYER_NORM_EPS_METADATA
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
        'this model record it)']  # 4 patch embeddings + 6 reductions (2 blocks in each of 3 stages)


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


# ---- checkpoints saved from a model with mmdet's eps record it ---------------------------------
def saved_metadata(model):
    """{module path: its metadata entry} of `model`'s state dict."""
    return dict(model.state_dict()._metadata)


def test_a_backbone_with_the_authors_eps_records_nothing(arch):
    assert all(LAYER_NORM_EPS_METADATA not in entry
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
        'throughout: 10 layer norms set to 1e-06']


def test_a_backbone_initialised_from_a_detector_saved_with_mmdets_eps_takes_it(tmp_path, arch):
    detector = torch.nn.Module()  # what init_cfg reads: a detector's checkpoint, 'backbone.*'
    detector.backbone = build_backbone(arch, layer_norm_eps=1e-6)
    torch.save({'state_dict': detector.state_dict()}, tmp_path / 'detector.pth')
    model = load_pretrained(tmp_path / 'detector.pth', arch, prefix='backbone.')
    assert layer_norm_eps(model) == {1e-6}


ZOO = {'tiny': ('pvt/retinanet_pvt-t_fpn_1x_coco.py', 'configs/retinanet/pvt_t_1x.py'),
       'b0': ('pvt/retinanet_pvtv2-b0_fpn_1x_coco.py', 'configs/retinanet/pvt_v2_b0_1x.py')}


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
            return max((a - b).abs().max().item() for mine, other in pairs
                       for a, b in zip(mine, other))
    assert max_error() < 1e-10
    for norm, eps in authors_eps.items():  # the same weights with the authors' eps: off
        norm.eps = eps
    assert max_error() > 1e-7


@pytest.mark.slow  # two RetinaNets in float64
def test_a_detector_fine_tuned_from_mmdets_weights_tests_as_it_trained(tmp_path, arch):
    """Our config loads mmdet's zoo RetinaNet (mmdet's eps), the Runner saves a checkpoint, and
    the model tools/test.py builds from the config loads it as the Runner does (our fit hook,
    then mmengine's loader): mmdet's eps, and the saved model's outputs exactly."""
    from mmengine.runner.checkpoint import (_load_checkpoint_to_model, get_state_dict,
                                            save_checkpoint, weights_to_cpu)
    zoo_config, our_config = ZOO[arch]
    cfg = load_config(our_config)
    cfg.model.backbone.init_cfg = None
    trained = build_model(cfg).double().eval()
    trained.load_state_dict(mmdet_zoo_model(zoo_config).double().state_dict())
    path = str(tmp_path / 'epoch_1.pth')
    save_checkpoint({'state_dict': weights_to_cpu(get_state_dict(trained)), 'meta': {}}, path)
    tested = build_model(cfg).double().eval()
    checkpoint = load_checkpoint_file(path)
    fit_state_dict(tested, checkpoint, path)
    _load_checkpoint_to_model(tested, checkpoint)
    assert layer_norm_eps(tested.backbone) == {1e-6}
    x = torch.randn(1, 3, 128, 160, dtype=torch.float64)
    with torch.no_grad():
        for ours, theirs in zip(tested(x, mode='tensor'), trained(x, mode='tensor')):
            assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
