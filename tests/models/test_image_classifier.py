"""Specification of PVT and PVTv2 as ImageNet classifiers in mmpretrain's ``ImageClassifier``:
v1 = ``PVT(out_type='cls_token')`` + ``LinearClsHead(512)`` (the normed class token, no pooling);
v2 = ``PVTv2(out_indices=(3,))`` + ``GlobalAveragePooling`` + ``LinearClsHead(C4)`` (the mean of
the stage-4 tokens after norm4), as tests/data/classification_facts.md Sec. 1 describes the
authors' classifiers.

Expected values: the parameter counts of the authors' releases (classification.md Sec. 3), the
explicit reference classifiers (reference_pvt.py, reference_pvt_v2.py), and the other libraries'
own models (timm, transformers) holding the same weights. Measured on random official-layout
weights, batch 2, at 224x224, 256x320 and 192x160 (max abs logit error vs the reference, logits
of magnitude 1-4): float32 <= 4.9e-6 (v1 tiny/small), <= 2.9e-6 (v2 b0/b2/b2-li); float64
<= 8.1e-15.
"""
import functools
import re

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint
from mmpretrain.apis import get_model
from mmpretrain.structures import DataSample

from mmpvt.models import CheckpointMismatchError, build_backbone
from mmpvt.models.checkpoints import fit_state_dict
from ..helpers import (build_classifier, build_model, by_family, classifier_config, family,
                       load_pretrained, max_abs_diff, official_weights, parameter_count, size_id)
from .reference_layouts import mmdet_layout
from .reference_pvt import reference_classify
from .reference_pvt_v2 import reference_classify_v2, reference_forward_v2

HEADS = (1, 2, 5, 8)


@functools.lru_cache(maxsize=None)
def official_classifier(arch, dtype=torch.float32):
    """(eval-mode classifier holding official_weights(arch) in `dtype`, loaded through
    ``load_state_dict(strict=True)``, those weights); shared: do not modify."""
    weights = {k: v.to(dtype) for k, v in official_weights(arch).items()}
    model = build_classifier(arch, drop_path_rate=0.0).to(dtype)
    model.load_state_dict(dict(weights), strict=True)
    return model.eval(), weights


def reference_logits(arch, weights, x):
    if family(arch) == 'PVT':
        return reference_classify(weights, HEADS, x)
    return reference_classify_v2(weights, HEADS, arch == 'b2_li', x)


@pytest.fixture(scope='module')
def official_files(tmp_path_factory):
    """{arch: path of a random whole classifier in the official layout}, written once."""
    root = tmp_path_factory.mktemp('official')
    for arch in ('tiny', 'small', 'b0'):
        torch.save(official_weights(arch), root / f'{arch}.pth')
    return {arch: root / f'{arch}.pth' for arch in ('tiny', 'small', 'b0')}


# ---- sizes -------------------------------------------------------------------------------------
@pytest.mark.parametrize('arch,params', [('tiny', 13_229_288), ('small', 24_485_864),
                                         ('medium', 44_208_104), ('large', 61_369_320),
                                         ('b0', 3_666_760),
                                         ('b1', 14_009_000), ('b2_li', 22_553_512),
                                         ('b2', 25_362_856), ('b3', 45_238_696), ('b4', 62_556_072),
                                         ('b5', 81_956_008)])
def test_parameter_count_is_the_authors_release(arch, params):
    """1000 classes: exactly the sum of the released tensors (classification.md Sec. 3)."""
    with torch.device('meta'):
        assert parameter_count(build_classifier(arch)) == params


# ---- logits against the explicit reference -----------------------------------------------------
SIZES = [(192, 160), (224, 224), (256, 320)]


def parity_cases(larger_variant_sizes):
    """(arch, hw) of the logits tests: PVT-T and PVTv2-B0 at every size of SIZES (the first in
    the fast tier), the larger variants (``make test`` only) at `larger_variant_sizes`."""

    def case(arch, hw, fast):
        return pytest.param(arch, hw, id=f'{size_id(hw)}-{family(arch)}-{arch}',
                            marks=() if fast else pytest.mark.slow)

    return (
        [case(arch, hw, hw == SIZES[0]) for arch in ('tiny', 'b0') for hw in SIZES] +
        [case(arch, hw, False) for arch in ('small', 'b2', 'b2_li') for hw in larger_variant_sizes])


@pytest.mark.parametrize('arch,hw', parity_cases(SIZES))
def test_official_weights_give_the_reference_logits_fp32(arch, hw):
    model, weights = official_classifier(arch)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        ours = model(x, mode='tensor')
        assert ours.shape == (2, 1000)
        assert max_abs_diff([ours], [reference_logits(arch, weights, x)]) <= 2e-5


# float64 is the exactness check: the larger variants at one size off the 224x224 grid (v1 resizes
# its position tables); their layers are PVT-T's and B0's, which run at every size
@pytest.mark.parametrize('arch,hw', parity_cases(SIZES[:1]))
def test_official_weights_give_the_reference_logits_fp64(arch, hw):
    model, weights = official_classifier(arch, torch.float64)
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    with torch.no_grad():
        assert max_abs_diff([model(x, mode='tensor')], [reference_logits(arch, weights, x)]) <= 1e-9


@pytest.mark.parametrize('arch', ['b0', 'b2_li'])
def test_v2_global_average_pool_is_the_authors_token_mean(arch):
    """The stage-4 map is already after norm4, so mmpretrain's pooling of it is the mean of the
    normed tokens (float64, so that nothing hides in float32 noise)."""
    model, weights = official_classifier(arch, torch.float64)
    x = torch.randn(2, 3, 96, 128, dtype=torch.float64)
    tokens = reference_forward_v2(weights, HEADS, arch == 'b2_li', x)[-1].flatten(2)
    with torch.no_grad():
        pooled = model.extract_feat(x)
    assert max_abs_diff(pooled, [tokens.mean(dim=-1)]) <= 1e-12


# ---- the other libraries' own classifiers ------------------------------------------------------
def timm_b0():
    import timm
    return timm.create_model('pvt_v2_b0', pretrained=False, num_classes=1000)


def transformers_model(arch):
    """transformers' classifier of `arch`, with the official LayerNorm eps (1e-5) in patch
    embedding and the K/V reduction (transformers uses config.layer_norm_eps, 1e-6, there)."""
    import transformers
    if arch == 'tiny':
        model = transformers.PvtForImageClassification(
            transformers.PvtConfig(depths=[2, 2, 2, 2], num_labels=1000))
    else:
        model = transformers.PvtV2ForImageClassification(
            transformers.PvtV2Config(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2],
                                     num_labels=1000))
    for name, m in model.named_modules():
        if re.search(
                r'(patch_embeddings\.\d+|patch_embedding|attention|attention\.self)'
                r'\.layer_norm$', name):
            m.eps = 1e-5
    return model


@pytest.mark.parametrize('arch,build', [
    pytest.param('b0', timm_b0, id='PVTv2-timm'),
    pytest.param('tiny', lambda: transformers_model('tiny'), id='PVT-transformers'),
    pytest.param('b0', lambda: transformers_model('b0'), id='PVTv2-transformers'),
])
def test_another_librarys_classifier_loads_and_gives_its_logits(arch, build):
    """What timm's / transformers' model saves loads strictly, and computes what that model
    computes (224x224, float32)."""
    theirs = build().eval()
    ours = build_classifier(arch, drop_path_rate=0.0).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = theirs(x)
        expected = getattr(expected, 'logits', expected)
        assert max_abs_diff([ours(x, mode='tensor')], [expected]) <= 2e-5


# ---- every loader ------------------------------------------------------------------------------
@pytest.fixture(params=by_family('tiny', 'b0'))
def arch(request):
    return request.param


def assert_same_classifier(model, reference):
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model.eval()(x, mode='tensor'), reference(x, mode='tensor'))


def test_own_checkpoint_round_trips_with_its_names(arch, tmp_path):
    model, _ = official_classifier(arch)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, tmp_path / 'own.pth')
    again = build_classifier(arch, drop_path_rate=0.0)
    checkpoint = torch.load(tmp_path / 'own.pth')
    assert list(checkpoint['state_dict'])[-2:] == ['head.fc.weight', 'head.fc.bias']
    again.load_state_dict(checkpoint['state_dict'], strict=True)
    assert_same_classifier(again, model)


def test_load_from_and_the_test_tool_read_the_official_file(arch, official_files):
    """mmengine's load_checkpoint (load_from, tools/test.py CONFIG CKPT), after the strict fit
    that mmpvt's CheckpointFitHook makes."""
    model = build_classifier(arch, drop_path_rate=0.0)
    checkpoint = torch.load(official_files[arch])
    fit_state_dict(model, checkpoint, 'official.pth', strict=True)
    assert set(checkpoint) == set(model.state_dict())
    load_checkpoint(model, str(official_files[arch]), strict=True)
    assert_same_classifier(model, official_classifier(arch)[0])


def test_init_cfg_of_the_whole_classifier_reads_the_official_file(arch, official_files):
    cfg = classifier_config(arch, drop_path_rate=0.0)
    cfg.model.init_cfg = dict(type='Pretrained', checkpoint=str(official_files[arch]))
    model = build_model(cfg)
    model.init_weights()
    assert_same_classifier(model, official_classifier(arch)[0])


def test_init_cfg_of_the_backbone_reads_the_official_file_head_left_to_train(arch, official_files):
    model = build_classifier(arch, num_classes=10, drop_path_rate=0.0,
                             init_cfg=dict(type='Pretrained', checkpoint=str(official_files[arch])))
    model.init_weights()
    ours, official = model.backbone.state_dict(), official_classifier(arch)[0].backbone
    assert all(torch.equal(v, official.state_dict()[k]) for k, v in ours.items())
    assert model.head.fc.weight.shape == (10, model.head.fc.in_features)


def test_mmpretrains_inferencer_model_reads_the_official_file(arch, official_files):
    """get_model is how ImageClassificationInferencer builds and loads its model."""
    model = get_model(
        classifier_config(arch, drop_path_rate=0.0), pretrained=str(official_files[arch]))
    assert_same_classifier(model, official_classifier(arch)[0])


def test_fine_tuning_on_other_classes_keeps_the_initial_head_with_one_line(
        arch, official_files, log_lines):
    model = build_classifier(arch, num_classes=10)
    checkpoint = torch.load(official_files[arch])
    with pytest.raises(CheckpointMismatchError, match=r'head\.fc\.weight 1000x\d+ vs 10x\d+'):
        fit_state_dict(model, dict(checkpoint), 'in1k.pth', strict=True)
    fit_state_dict(model, checkpoint, 'in1k.pth', strict=False)
    assert [line for line in log_lines if line.startswith('load_from')] == [
        'load_from in1k.pth: kept the initial weights of 2 tensors and skipped 0 (2 shape '
        f'mismatches (file vs model): head.fc.weight 1000x{model.head.fc.in_features} vs '
        f'10x{model.head.fc.in_features}, head.fc.bias 1000 vs 10)'
    ]


@pytest.mark.parametrize('ckpt_arch,model_arch,message', [
    pytest.param('tiny', 'b0', r"is a PVT checkpoint \(official layout\); it cannot be loaded "
                 r"into PVTv2", id='PVT-into-PVTv2'),
    pytest.param('b0', 'tiny', r"is a PVTv2 checkpoint \(official layout\); it cannot be loaded "
                 r"into PVT", id='PVTv2-into-PVT'),
    pytest.param('small', 'tiny', r'(?s)does not fit this PVT \(arch tiny\).*looks like PVT arch '
                 r'small\.$', id='PVT-small-into-tiny'),
])
def test_a_file_of_another_family_or_variant_is_an_error_saying_what_it_is(
        official_files, ckpt_arch, model_arch, message):
    with pytest.raises(CheckpointMismatchError, match=message):
        load_checkpoint(build_classifier(model_arch), str(official_files[ckpt_arch]))


@pytest.mark.parametrize('prefix', [{'prefix': 'backbone.'}, {}], ids=['prefix', 'no-prefix'])
def test_a_trained_classifier_initialises_a_detection_backbone(arch, official_files, tmp_path,
                                                               prefix):
    """Pre-train with mmpvt, fine-tune for dense prediction: the classifier's checkpoint feeds a
    backbone through init_cfg, class token, final norm and head left out."""
    classifier, _ = official_classifier(arch)
    torch.save({'state_dict': classifier.state_dict(), 'meta': {}}, tmp_path / 'in1k.pth')
    dense = load_pretrained(tmp_path / 'in1k.pth', arch, **prefix)
    direct = load_pretrained(official_files[arch], arch)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(dense(x), direct(x)))
    assert dense.state_dict().keys() == build_backbone(arch).state_dict().keys()


# ---- training and prediction -------------------------------------------------------------------
def batch(labels, hw=(32, 32)):
    """mmpretrain's input: uint8 BGR images and data samples with their labels."""
    return dict(inputs=[torch.randint(0, 256, (3, *hw), dtype=torch.uint8) for _ in labels],
                data_samples=[DataSample().set_gt_label(label) for label in labels])


def test_one_training_step_gives_the_untrained_loss_and_gradients_everywhere(arch):
    """Cross-entropy of a freshly initialised head (Normal std 0.01: logits of std <= 0.23 on
    unit-variance features) over 10 classes is ln 10 = 2.303 up to a few tenths (8 images);
    every parameter, v1's class token included, gets a gradient."""
    model = build_classifier(arch, num_classes=10)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(batch([0, 1, 2, 3, 4, 5, 6, 7]), training=True)
    loss = model(**data, mode='loss')['loss']
    assert abs(loss.item() - 2.303) < 0.3
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_prediction_scores_every_class_and_picks_the_top_one(arch):
    model = build_classifier(arch, num_classes=10, drop_path_rate=0.0)
    model.init_weights()
    model.eval()
    data = model.data_preprocessor(batch([3, 5]), training=False)
    with torch.no_grad():
        results = model(**data, mode='predict')
        logits = model(data['inputs'], mode='tensor')
    assert len(results) == 2
    for result, row in zip(results, logits):
        assert result.pred_score.shape == (10, )
        assert torch.allclose(result.pred_score, row.softmax(-1))
        assert result.pred_label.item() == row.argmax().item()
    assert [r.gt_label.item() for r in results] == [3, 5]


def test_a_v2_classifier_reading_mmdets_layout_computes_with_mmdets_eps():
    # mmpretrain's ImageClassifier renames a bare backbone of another layout through its own
    # pre-hook (the head is left as it was: strict=False); mmdet's ports use LayerNorm eps 1e-6
    # throughout (tests/models/checkpoints/test_trainer_numerics.py). PVT v1's classifier has a
    # class token, which mmdet's layout has not.
    classifier = build_classifier('b0')
    classifier.load_state_dict(mmdet_layout(official_weights('b0')), strict=False)
    assert {m.eps
            for m in classifier.backbone.modules() if isinstance(m, torch.nn.LayerNorm)} == {1e-6}
