"""Weights from where users get them: ``hf-hub:OWNER/NAME`` (timm's prefix) names a model on the
Hugging Face Hub wherever a checkpoint path or URL is accepted, read from the Hugging Face cache
(offline here: each test builds the cache it reads, and the Hub is never asked), and
``.safetensors`` files load wherever ``.pth`` files do. The expected weights are the random
official-layout tensors the test put there, renamed by hand (helpers.assert_holds_official_weights).
"""
import huggingface_hub
import pytest
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import reset_sessions

from mmpvt.models import CheckpointReadError
from .helpers import (assert_holds_official_weights, data_env, load_pretrained, official_weights,
                      place_in_hub_cache, random_weights, run_main)
from .models.reference_layouts import in_layout

RETINA_DEMO = 'configs/demo/retinanet_pvt_t.py'
FPN_DEMO = 'configs/demo/sem_fpn_pvt_t.py'


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache that huggingface_hub reads, offline (HF_HUB_OFFLINE=1)."""
    cache = tmp_path / 'hf_cache'
    cache.mkdir()
    monkeypatch.setattr(hub_constants, 'HF_HUB_CACHE', str(cache))
    monkeypatch.setattr(hub_constants, 'HF_HUB_OFFLINE', True)
    reset_sessions()  # huggingface_hub reads HF_HUB_OFFLINE when it opens a session
    yield cache
    reset_sessions()


# what the Hub holds: the authors' transformers classifiers (OpenGVLab) and timm's, as
# safetensors; an older upload as pytorch_model.bin
@pytest.mark.parametrize('repo,arch,layout,filename', [
    ('OpenGVLab/pvt_v2_b0', 'b0', 'transformers', 'model.safetensors'),
    ('timm/pvt_v2_b0.in1k', 'b0', 'timm', 'model.safetensors'),
    ('Zetatech/pvt-tiny-224', 'tiny', 'transformers', 'pytorch_model.bin'),
])
def test_a_hub_name_initialises_the_backbone_from_the_cache_offline(hub_cache, repo, arch, layout,
                                                                    filename):
    official = official_weights(arch)
    place_in_hub_cache(hub_cache, repo, filename, in_layout(layout, official))
    assert_holds_official_weights(load_pretrained(f'hf-hub:{repo}', arch), official)


def test_the_safetensors_file_is_taken_before_the_pytorch_one(hub_cache):
    repo = 'someone/pvt_v2_b0'
    place_in_hub_cache(hub_cache, repo, 'pytorch_model.bin', official_weights('b0', seed=1))
    place_in_hub_cache(hub_cache, repo, 'model.safetensors', official_weights('b0'))
    assert_holds_official_weights(load_pretrained(f'hf-hub:{repo}', 'b0'), official_weights('b0'))


@pytest.mark.parametrize('name', ['model.safetensors', 'weights.bin'],
                         ids=['named .safetensors', 'named otherwise'])
def test_a_safetensors_file_loads_where_a_pth_file_does(tmp_path, name):
    from safetensors.torch import save_file
    official = official_weights('tiny')
    save_file(official, str(tmp_path / name))
    assert_holds_official_weights(load_pretrained(tmp_path / name, 'tiny'), official)


def test_a_truncated_safetensors_file_is_one_line_naming_it(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / 'model.safetensors'
    save_file(official_weights('b0'), str(path))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(
            CheckpointReadError, match=rf'^Could not read the checkpoint {path}: .*'
            r'Expected a safetensors file \(is the file complete\?\)$'):
        load_pretrained(path, 'b0')


def test_a_hub_model_missing_from_the_cache_offline_says_what_to_do(hub_cache):
    with pytest.raises(CheckpointReadError) as err:
        load_pretrained('hf-hub:OpenGVLab/pvt_v2_b1', 'b1')
    assert str(err.value) == (
        f'hf-hub:OpenGVLab/pvt_v2_b1: not in the Hugging Face cache ({hub_cache}) and the Hub '
        'cannot be reached (offline, or HF_HUB_OFFLINE=1): download it once on a machine online '
        'with the same HF_HOME, or give a local file')


@pytest.mark.parametrize('name', ['hf-hub:pvt_v2_b0', 'hf-hub:a/b/c', 'hf-hub:/pvt_v2_b0'])
def test_a_malformed_hub_name_says_the_form_expected(hub_cache, name):
    with pytest.raises(
            CheckpointReadError, match=rf'^{name}: expected hf-hub:OWNER/NAME \('
            r'optionally @REVISION\), e\.g\. hf-hub:timm/pvt_v2_b2\.in1k$'):
        load_pretrained(name, 'b0')


def test_convert_checkpoint_reads_a_hub_name(hub_cache, tmp_path):
    official = official_weights('b0')
    place_in_hub_cache(hub_cache, 'timm/pvt_v2_b0.in1k', 'model.safetensors',
                       in_layout('timm', official))
    run_main('convert_checkpoint.py',
             ['hf-hub:timm/pvt_v2_b0.in1k', tmp_path / 'b0.pth', '--backbone-only'])
    assert_holds_official_weights(load_pretrained(tmp_path / 'b0.pth', 'b0'), official)


def hub_answering(monkeypatch, answers):
    """huggingface_hub.hf_hub_download answering file name -> a path, or an exception to raise
    (as the Hub answers online); the files asked for, in order, are returned."""
    asked = []

    def download(repo, filename, revision=None):
        asked.append(filename)
        if isinstance(answers[filename], Exception):
            raise answers[filename]
        return answers[filename]

    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', download)
    return asked


def test_online_a_model_without_safetensors_gives_its_pytorch_file(hub_cache, tmp_path,
                                                                   monkeypatch):
    path = tmp_path / 'pytorch_model.bin'
    torch.save(official_weights('b0'), path)
    asked = hub_answering(monkeypatch, {
        'model.safetensors': EntryNotFoundError('404'),
        'pytorch_model.bin': str(path)
    })
    assert_holds_official_weights(
        load_pretrained('hf-hub:someone/b0', 'b0'), official_weights('b0'))
    assert asked == ['model.safetensors', 'pytorch_model.bin']


@pytest.mark.parametrize('refusal,said', [
    (RepositoryNotFoundError('401 Client Error'), 'hf-hub:someone/b0: no such model (or '
     'revision) on the Hugging Face Hub, or it is private or gated (log in with '
     '`huggingface-cli login`)'),
    (HfHubHTTPError('429 Too Many Requests'), 'hf-hub:someone/b0: could not download '
     'model.safetensors from the Hugging Face Hub: HfHubHTTPError: 429 Too Many Requests'),
], ids=['no such model', 'rate-limited'])
def test_online_a_download_the_hub_refuses_is_one_line_naming_the_model(
        hub_cache, monkeypatch, refusal, said):
    hub_answering(monkeypatch, {'model.safetensors': refusal})
    with pytest.raises(CheckpointReadError) as err:
        load_pretrained('hf-hub:someone/b0', 'b0')
    assert str(err.value) == said


@pytest.mark.slow  # builds a Semantic FPN and a RetinaNet
@pytest.mark.parametrize('tool', ['test.py', 'image_demo.py', 'deploy/export_onnx.py'])
def test_the_tools_read_a_hub_name_through_the_strict_loading(hub_cache, tiny_shapes, tmp_path,
                                                              tool):
    # a Semantic FPN's weights under a Hub name, given for a RetinaNet: the tool took the name
    # and read the file from the cache when it names what the weights do not fit
    fpn = torch.load(random_weights(FPN_DEMO, tmp_path / 'fpn.pth'))['state_dict']
    place_in_hub_cache(hub_cache, 'someone/sem_fpn_pvt_t', 'pytorch_model.bin', fpn)
    name = 'hf-hub:someone/sem_fpn_pvt_t'
    args = {
        'test.py': [RETINA_DEMO, name, '--work-dir', tmp_path / 'out'],
        'image_demo.py': [
            tiny_shapes / 'images' / 'validation', RETINA_DEMO, '--weights', name, '--out-dir',
            tmp_path / 'out'
        ],
        'deploy/export_onnx.py': [RETINA_DEMO, name, tmp_path / 'retina.onnx']
    }[tool]
    out = run_main(tool, args, env=data_env(tiny_shapes), check=False)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith(
        f'{tool.split("/")[-1][:-3]}: The checkpoint {name} does not fit this RetinaNet: ')
