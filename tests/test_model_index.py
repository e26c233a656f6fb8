"""The model index (model-index.yml and each config folder's metafile.yml, OpenMMLab's format) lists
the released models with their config, weights and reported metrics, and get_model builds one by
name with its weights. Expected values: the authors' numbers as tests/data/classification_facts.md
records them (Sec. 3) and the installed mmdet's own metafile (configs/pvt/metafile.yml); weights
are read offline from a torch hub cache the test fills."""
import os.path as osp
import re

import mmdet
import pytest
import torch
import yaml

from mmpvt.apis.model_index import get_model, list_models, released_models
from mmpvt.apis.runner import load_config
from mmpvt.models.builder import build_from_config
from .helpers import (REPO, assert_holds_official_classifier, mmdet_zoo_model, official_weights,
                      parameter_count)

RELEASE = {
    'pvt-t': 'pvt_tiny',
    'pvt-s': 'pvt_small',
    'pvt-m': 'pvt_medium',
    'pvt-l': 'pvt_large',
    **{
        f'pvt-v2-{v}': f'pvt_v2_{v.replace("-", "_")}'
        for v in ('b0', 'b1', 'b2', 'b2-li', 'b3', 'b4', 'b5')
    }
}


def facts_table():
    """{release name: (top-1, exact parameter count)} of classification_facts.md Sec. 3."""
    with open(osp.join(REPO, 'tests', 'data', 'classification_facts.md')) as f:
        rows = re.findall(r'^\| (pvt_\w+) \| ([\d.]+) \|.*\| ([\d,]+) \|$', f.read(), re.M)
    return {name: (float(top1), int(params.replace(',', ''))) for name, top1, params in rows}


def mmdet_zoo():
    """{name: model entry} of the installed mmdet's PVT metafile."""
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'pvt', 'metafile.yml')
    with open(path) as f:
        return {m['Name']: m for m in yaml.safe_load(f)['Models']}


def test_every_released_model_names_a_config_of_ours():
    models = released_models()
    assert [(n, m['Config']) for n, m in models.items() if not osp.isfile(m['Config'])] == []
    assert len(models) == 20  # 11 classifiers, 9 RetinaNets


def test_the_classifiers_are_the_authors_releases_with_their_numbers():
    facts = facts_table()
    classifiers = {n: m for n, m in released_models().items() if n.endswith('_in1k')}
    assert sorted(RELEASE[n[:-len('_in1k')]] for n in classifiers) == sorted(facts)
    for name, model in classifiers.items():
        release = RELEASE[name[:-len('_in1k')]]
        assert model['Weights'] == ('https://github.com/whai362/PVT/releases/download/v2/'
                                    f'{release}.pth')
        top1, params = facts[release]
        assert model['Results'][0]['Metrics'] == {'Top 1 Accuracy': top1}
        assert model['Metadata']['Parameters'] == params


@pytest.mark.slow  # builds each classifier (on the meta device)
@pytest.mark.parametrize('name', list_models('_in1k'))
def test_a_classifiers_config_has_the_parameters_of_its_release(name):
    model = released_models()[name]
    with torch.device('meta'):
        built = build_from_config(load_config(model['Config']), pretrained=False)
    assert parameter_count(built) == model['Metadata']['Parameters']


def test_the_detectors_are_mmdets_zoo_models_with_its_numbers():
    zoo = mmdet_zoo()
    ours = {n: m for n, m in released_models().items() if n.startswith('retinanet_')}
    assert sorted(ours) == sorted(zoo)
    for name, model in ours.items():
        assert model['Weights'] == zoo[name]['Weights']
        assert model['Results'] == zoo[name]['Results']


def test_an_unknown_name_is_one_line_listing_the_names_like_it():
    with pytest.raises(
            ValueError, match=r"^'pvt-x_in1k' is no released model of mmpvt; expected "
            r'one of pvt-t_in1k, pvt-s_in1k, .*pvt-v2-b5_in1k$'):
        get_model('pvt-x_in1k')


def test_get_model_reads_the_released_classifier_from_the_cache_offline(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    (tmp_path / 'hub' / 'checkpoints').mkdir(parents=True)
    official = official_weights('b0')
    torch.save(official, tmp_path / 'hub' / 'checkpoints' / 'pvt_v2_b0.pth')
    model = get_model('pvt-v2-b0_in1k', pretrained=True)
    assert not model.training
    assert_holds_official_classifier(model.state_dict(), official)


@pytest.mark.slow  # two RetinaNets
def test_get_model_reads_mmdets_zoo_retinanet_and_computes_with_its_eps(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    (tmp_path / 'hub' / 'checkpoints').mkdir(parents=True)
    url = released_models()['retinanet_pvtv2-b0_fpn_1x_coco']['Weights']
    weights = mmdet_zoo_model('pvt/retinanet_pvtv2-b0_fpn_1x_coco.py').state_dict()
    torch.save({'state_dict': weights}, tmp_path / 'hub' / 'checkpoints' / osp.basename(url))
    model = get_model('retinanet_pvtv2-b0_fpn_1x_coco', pretrained=True)
    assert torch.equal(model.bbox_head.retina_cls.weight, weights['bbox_head.retina_cls.weight'])
    assert torch.equal(model.backbone.stages[0].patch_embed.proj.weight,
                       weights['backbone.layers.0.0.projection.weight'])  # mmdet's name
    assert {m.eps for m in model.backbone.modules() if isinstance(m, torch.nn.LayerNorm)} == {1e-6}
