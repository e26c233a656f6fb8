"""Adding a family is one module and its registration (tests/families/toy_family.py, a made-up
family): once registered, variant look-up, checkpoint conversion, the OpenMMLab backbone (by
config, ``init_cfg`` loading strictly) and the converter tool's checks work for it unchanged."""
import pytest
import torch

from mmpvt.apis.convert import convert_checkpoint_file
from mmpvt.families import FAMILIES, build_encoder, convert_to_mmpvt, family_of, register_family
from mmpvt.models import CheckpointMismatchError
from mmpvt.models.backbones import openmmlab_backbone
from mmpvt.registry import MODELS
from . import toy_family


@pytest.fixture
def toy(monkeypatch):
    """The toy family registered (and its OpenMMLab backbone as ``mmpvt.Toy``) for one test."""
    monkeypatch.delitem(FAMILIES, 'Toy', raising=False)
    register_family(toy_family.FAMILY)
    MODELS.register_module()(openmmlab_backbone(toy_family.Toy))
    yield toy_family.FAMILY
    del FAMILIES['Toy']
    MODELS._module_dict.pop('Toy')


def test_a_registered_family_is_found_by_its_variant_names(toy):
    assert family_of('toy_m') is toy
    model = build_encoder('toy_m')
    assert isinstance(model, toy_family.Toy)
    assert [o.shape[1] for o in model(torch.randn(1, 3, 32, 32))] == [16, 48]


def test_its_checkpoints_are_identified_and_converted_to_its_own_names(toy):
    torch.manual_seed(0)
    model = toy_family.Toy('toy_s').double().eval()
    authors = toy_family.mmpvt_to_authors(model.state_dict())
    assert all(k.startswith(('toy1.', 'toy2.')) for k in authors)
    converted = convert_to_mmpvt(authors)
    assert (converted.family, converted.layout) == ('Toy', 'official')
    fresh = toy_family.Toy('toy_s').double().eval()
    fresh.load_state_dict(converted.state_dict, strict=True)
    x = torch.randn(2, 3, 40, 24, dtype=torch.float64)
    assert all(torch.equal(a, b) for a, b in zip(fresh(x), model(x)))


def test_its_openmmlab_backbone_builds_by_config_and_loads_strictly(toy, tmp_path):
    torch.manual_seed(0)
    source = toy_family.Toy('toy_s')
    path = tmp_path / 'toy_s.pth'
    torch.save(toy_family.mmpvt_to_authors(source.state_dict()), path)
    backbone = MODELS.build(
        dict(type='mmpvt.Toy', arch='toy_s', init_cfg=dict(type='Pretrained',
                                                           checkpoint=str(path))))
    backbone.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(backbone.state_dict()[key], value), key
    other = MODELS.build(
        dict(type='mmpvt.Toy', arch='toy_m', init_cfg=dict(type='Pretrained',
                                                           checkpoint=str(path))))
    with pytest.raises(CheckpointMismatchError, match=r'shape mismatches.*stages\.1'):
        other.init_weights()


def test_the_converter_tool_converts_and_checks_its_checkpoints(toy, tmp_path):
    torch.manual_seed(0)
    source = toy_family.Toy('toy_m')
    torch.save(toy_family.mmpvt_to_authors(source.state_dict()), tmp_path / 'authors.pth')
    info = convert_checkpoint_file(str(tmp_path / 'authors.pth'), str(tmp_path / 'mmpvt.pth'))
    assert (info['family'], info['layout'], info['classifier']) == ('Toy', 'official', False)
    written = torch.load(tmp_path / 'mmpvt.pth', weights_only=True)
    written = written.get('state_dict', written)
    assert sorted(written) == sorted(source.state_dict())
    assert all(torch.equal(written[k], v) for k, v in source.state_dict().items())
    with pytest.raises(CheckpointMismatchError, match=r'authors\.pth'):
        convert_checkpoint_file(
            str(tmp_path / 'authors.pth'), str(tmp_path / 'small.pth'), arch='toy_s')


def test_a_family_taking_another_familys_name_or_variant_is_refused(toy):
    with pytest.raises(ValueError, match="A family named 'Toy' is already registered"):
        register_family(toy)
    with pytest.raises(ValueError, match=r"variant names already used by other families: "
                       r"\{'b0': 'PVTv2'\}"):
        register_family(toy._replace(name='Toy2', archs={'b0': toy.archs['toy_s']}))
