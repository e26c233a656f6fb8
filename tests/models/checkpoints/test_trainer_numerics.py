"""Weights compute as their trainer computed: a checkpoint in mmdet's layout was trained by mmdet's
ports, whose every LayerNorm has eps 1e-6 (the authors' code: 1e-5 in patch embedding and spatial
reduction), so loading it gives the model mmdet's eps, with one log line; the authors' and other
layouts keep the authors' eps. Expected values: mmdet's own RetinaNets, built from the zoo configs
of the installed mmdet (configs/pvt/), in float64, where a 1e-5 vs 1e-6 eps shows."""
import pytest
import torch

from mmpvt.apis.runner import load_config
from mmpvt.models import build_backbone
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
        'to 1e-06, so that the weights compute as they were trained (checkpoints saved from this '
        'model do not record it: give the backbone layer_norm_eps=1e-06 in the config that tests '
        'or resumes them)']  # 4 patch embeddings + 6 reductions (2 blocks in each of 3 stages)


def test_weights_in_the_authors_layout_keep_the_authors_eps(tmp_path, arch, log_lines):
    path = saved_checkpoint(tmp_path, official_weights(arch))
    assert layer_norm_eps(load_pretrained(path, arch)) == {1e-5, 1e-6}
    assert not [line for line in log_lines if 'LayerNorm eps' in line]


def test_the_layer_norm_eps_option_sets_every_layer_norm(arch):
    # what a config gives to test or resume what was trained from mmdet's weights
    assert layer_norm_eps(build_backbone(arch, layer_norm_eps=1e-6)) == {1e-6}
    assert layer_norm_eps(build_backbone(arch)) == {1e-5, 1e-6}  # the authors'


def test_converting_weights_in_mmdets_layout_says_which_eps_to_give(tmp_path, arch):
    path = saved_checkpoint(tmp_path, in_layout('mmdet', official_weights(arch)))
    out = run_main('convert_checkpoint.py', [path, tmp_path / 'converted.pth'])
    assert out.stdout.splitlines()[-1] == (
        'its mmdet layout was trained with LayerNorm eps 1e-06 throughout: give the backbone '
        'layer_norm_eps=1e-06 in the config that uses the converted file')


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
