"""The authors' trained detectors and segmentors (mmdet 2.13 / mmseg 0.13 files, backbone in the
official layout under ``backbone.``) load through our configs with every loader and predict as the
model they were made from; a backbone that cannot be matched is an error naming keys.

The authors' files are rebuilt here from facts: the backbone from the official key tables
(tests/data/*.json; the detection/segmentation backbones are the ImageNet ones without
``cls_token``, ``norm`` and ``head``), the neck and heads from a model built by our config (their
mmdet 2.x / mmseg 0.x names equal the 3.x / 1.x ones, checked below against the module
attributes of mmdet 2.13 / mmseg 0.13), DETR's transformer under its mmdet 2.13 names.
"""
import copy
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import mmpvt  # noqa: F401
from mmpvt.models.checkpoints import CheckpointMismatchError
from .helpers import REPO, build_model, random_official_state_dict, run_main

pytestmark = pytest.mark.slow  # whole detectors, inferencers, tools

# tools/test.py and tools/convert_checkpoint.py run as their main(argv) in this process
# (helpers.run_main); tests/test_tools.py and tests/apis/test_convert.py run them as scripts.

CLASSES = ('circle', 'square', 'triangle', 'star')
FAMILIES = {
    # name: (config, task, backbone key table, variant)
    'retinanet': ('configs/demo/retinanet_pvt_t.py', 'det', 'v1', 'tiny'),
    'mask_rcnn': ('configs/demo/mask_rcnn_pvt_t.py', 'det', 'v1', 'tiny'),
    'sem_fpn': ('configs/demo/sem_fpn_pvt_t.py', 'seg', 'v1', 'tiny'),
    'detr': ('configs/demo/detr_pvt_t.py', 'det', 'v1', 'tiny'),
    'retinanet_v2': ('configs/demo/retinanet_pvt_v2_b0.py', 'det', 'v2', 'b0'),
}
# Entries of the ImageNet checkpoints that the authors' detection/segmentation backbones lack.
CLASSIFIER_ONLY = re.compile(r'^(cls_token|norm\.(weight|bias)|head\.(weight|bias))$')

# ---- mmdet 2.13 DETR names, from its DETRHead (input_proj, query_embedding, fc_cls, reg_ffn,
# fc_reg) and Transformer (mmcv 1.3 BaseTransformerLayer: attentions[0] self-attention,
# attentions[1] cross-attention in operation_order, ffns[0], norms[j]; decoder.post_norm) -------
ATTN = ('attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight', 'attn.out_proj.bias')
FFN = ('layers.0.0.weight', 'layers.0.0.bias', 'layers.1.weight', 'layers.1.bias')


def mmdet213_detr_keys(num_layers=6):
    keys = [
        'bbox_head.input_proj.weight', 'bbox_head.input_proj.bias',
        'bbox_head.query_embedding.weight', 'bbox_head.fc_cls.weight', 'bbox_head.fc_cls.bias',
        'bbox_head.fc_reg.weight', 'bbox_head.fc_reg.bias',
        'bbox_head.transformer.decoder.post_norm.weight',
        'bbox_head.transformer.decoder.post_norm.bias'
    ]
    keys += [f'bbox_head.reg_ffn.{k}' for k in FFN]
    for part, attentions, norms in (('encoder', 1, 2), ('decoder', 2, 3)):
        for i in range(num_layers):
            p = f'bbox_head.transformer.{part}.layers.{i}.'
            keys += [f'{p}attentions.{a}.{k}' for a in range(attentions) for k in ATTN]
            keys += [f'{p}ffns.0.{k}' for k in FFN]
            keys += [f'{p}norms.{j}.{w}' for j in range(norms) for w in ('weight', 'bias')]
    return keys


# 3.x name -> 2.13 name, written from the two codebases (not from mmpvt's converter).
TO_MMDET213 = (
    (r'^neck\.convs\.0\.conv\.', 'bbox_head.input_proj.'),
    (r'^query_embedding\.', 'bbox_head.query_embedding.'),
    (r'^(encoder|decoder)\.layers\.(\d+)\.self_attn\.',
     r'bbox_head.transformer.\1.layers.\2.attentions.0.'),
    (r'^decoder\.layers\.(\d+)\.cross_attn\.',
     r'bbox_head.transformer.decoder.layers.\1.attentions.1.'),
    (r'^(encoder|decoder)\.layers\.(\d+)\.ffn\.', r'bbox_head.transformer.\1.layers.\2.ffns.0.'),
    (r'^(encoder|decoder)\.layers\.(\d+)\.norms\.', r'bbox_head.transformer.\1.layers.\2.norms.'),
    (r'^decoder\.post_norm\.', 'bbox_head.transformer.decoder.post_norm.'),
)


def to_mmdet213_detr(key):
    for pattern, repl in TO_MMDET213:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    return key


# ---- mmdet 2.13 / mmseg 0.13 attribute names of the necks and heads we inherit --------------
# (FPN: lateral_convs/fpn_convs of ConvModule `conv`; RetinaHead: cls_convs/reg_convs,
# retina_cls/retina_reg; RPNHead: rpn_conv/rpn_cls/rpn_reg; Shared2FCBBoxHead: shared_fcs,
# fc_cls, fc_reg; FCNMaskHead: convs, upsample, conv_logits; mmseg FPNHead: scale_heads of
# ConvModule `conv`/`bn`, conv_seg.) The 3.x / 1.x models must use exactly these names.
MMDET2_HEAD_NAMES = {
    'retinanet':
    r'^(neck\.(lateral|fpn)_convs\.\d+\.conv|bbox_head\.((cls|reg)_convs\.\d+\.conv'
    r'|retina_cls|retina_reg))\.(weight|bias)$',
    'mask_rcnn':
    r'^(neck\.(lateral|fpn)_convs\.\d+\.conv|rpn_head\.rpn_(conv|cls|reg)'
    r'|roi_head\.bbox_head\.(shared_fcs\.\d+|fc_cls|fc_reg)'
    r'|roi_head\.mask_head\.(convs\.\d+\.conv|upsample|conv_logits))\.(weight|bias)$',
    'sem_fpn':
    r'^(neck\.(lateral|fpn)_convs\.\d+\.conv\.(weight|bias)'
    r'|decode_head\.scale_heads\.\d+\.\d+\.(conv\.weight|bn\.(weight|bias|running_mean'
    r'|running_var|num_batches_tracked))|decode_head\.conv_seg\.(weight|bias))$',
}
MMDET2_HEAD_NAMES['retinanet_v2'] = MMDET2_HEAD_NAMES['retinanet']


def tensors_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope='module')
def authors_files(tmp_path_factory, official_keys, official_v2_keys):
    """{family: (config, reference model, authors'-layout file, mmpvt-layout file)}."""
    root = tmp_path_factory.mktemp('authors')
    files = {}
    for name, (config, task, table, variant) in FAMILIES.items():
        keys = (official_keys if table == 'v1' else official_v2_keys)[variant]
        backbone = {
            k: v
            for k, v in random_official_state_dict(keys, seed=1).items()
            if not CLASSIFIER_ONLY.match(k)
        }
        official = root / f'{name}_backbone_official.pth'
        torch.save(backbone, official)
        cfg = Config.fromfile(f'{REPO}/{config}')
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(official))
        torch.manual_seed(0)
        model = build_model(cfg)
        model.init_weights()  # the backbone through our init_cfg loader, the rest random
        model.eval()
        head = {k: v for k, v in model.state_dict().items() if not k.startswith('backbone.')}
        if name == 'detr':
            head = {to_mmdet213_detr(k): v for k, v in head.items()}
            # the fixture's own check: the renaming and the name list, written independently,
            # agree (a check of the test data, not of mmpvt)
            assert sorted(head) == sorted(mmdet213_detr_keys())
        meta = dict(CLASSES=CLASSES if task == 'det' else ('background', ) + CLASSES)
        meta['mmdet_version' if task == 'det' else 'mmseg_version'] = \
            '2.13.0' if task == 'det' else '0.13.0'
        authors = root / f'{name}_authors.pth'
        torch.save(
            {
                'meta': meta,
                'state_dict': {
                    **{
                        f'backbone.{k}': v
                        for k, v in backbone.items()
                    },
                    **head
                }
            }, authors)
        ours = root / f'{name}_mmpvt.pth'
        torch.save(
            {
                'meta': dict(dataset_meta=dict(classes=meta['CLASSES'])),
                'state_dict': model.state_dict()
            }, ours)
        files[name] = (cfg, model, authors, ours)
    return files


def test_mmdet213_detr_names_are_renamed_to_those_of_our_detr(authors_files):
    from mmpvt.models.checkpoints.detr import mmdet2_detr_to_mmdet3
    model = authors_files['detr'][1]
    renamed, count = mmdet2_detr_to_mmdet3({k: torch.zeros(1) for k in mmdet213_detr_keys()})
    # 193 names (9 + 4 + 6 x 12 encoder + 6 x 18 decoder), of which fc_cls, reg_ffn, fc_reg (8)
    # are the same in mmdet 3.x
    assert count == 193 - 8
    assert sorted(renamed) == sorted(k for k in model.state_dict() if not k.startswith('backbone.'))


@pytest.mark.parametrize('name', ['retinanet', 'mask_rcnn', 'sem_fpn', 'retinanet_v2'])
def test_neck_and_head_names_are_those_of_mmdet2_and_mmseg0(authors_files, name):
    model = authors_files[name][1]
    head = [k for k in model.state_dict() if not k.startswith('backbone.')]
    assert head and all(re.match(MMDET2_HEAD_NAMES[name], k) for k in head), \
        [k for k in head if not re.match(MMDET2_HEAD_NAMES[name], k)]


@pytest.mark.parametrize('name', list(FAMILIES))
def test_mmengine_loader_gives_the_model_it_was_made_from(authors_files, name, log_lines):
    cfg, model, authors, _ = authors_files[name]
    fresh = build_model(cfg)
    load_checkpoint(fresh, str(authors), map_location='cpu')  # what tools/test.py, load_from use
    assert tensors_equal(fresh.state_dict(), model.state_dict())
    assert any('converted the' in line and 'official layout' in line for line in log_lines)
    assert not any('missing keys' in line or 'unexpected key' in line for line in log_lines)


def _predict(inferencer_cls, config, weights, image):
    inferencer = inferencer_cls(model=config, weights=str(weights), device='cpu')
    result = inferencer(image, return_datasamples=True)
    if isinstance(result, dict):  # DetInferencer: {'predictions': [sample], ...}
        return result['predictions'][0]
    return result  # MMSegInferencer: the sample itself


@pytest.mark.parametrize('name', list(FAMILIES))
def test_inferencer_predicts_as_the_model_it_was_made_from(authors_files, tiny_shapes, name):
    cfg, _, authors, ours = authors_files[name]
    image = str(sorted((tiny_shapes / 'images' / 'validation').glob('*.png'))[0])
    if FAMILIES[name][1] == 'det':
        from mmdet.apis import DetInferencer as Inferencer
    else:
        from mmseg.apis import MMSegInferencer as Inferencer
    config = copy.deepcopy(cfg)
    config.model.backbone.init_cfg = None
    if name.startswith('retinanet'):  # a random model: keep low scores, so there is something
        config.model.test_cfg.score_thr = 0.0
    elif name == 'mask_rcnn':
        config.model.test_cfg.rcnn.score_thr = 0.0
    got, expected = (_predict(Inferencer, config, w, image) for w in (authors, ours))
    if FAMILIES[name][1] == 'det':
        a, b = got.pred_instances, expected.pred_instances
        assert len(b.labels) > 0 and torch.equal(a.labels, b.labels)
        torch.testing.assert_close(a.bboxes, b.bboxes, rtol=0, atol=0)
        torch.testing.assert_close(a.scores, b.scores, rtol=0, atol=0)
    else:
        assert torch.equal(got.pred_sem_seg.data, expected.pred_sem_seg.data)
        torch.testing.assert_close(got.seg_logits.data, expected.seg_logits.data, rtol=0, atol=0)


# RetinaNet only: a tools/test.py run costs ~2 s; the segmentor's loading is covered above by
# mmengine's loader and MMSegInferencer, and tools/test.py is one code path for both tasks.
@pytest.mark.parametrize('name', ['retinanet'])
def test_tools_test_scores_the_authors_file_as_the_model_it_was_made_from(
        authors_files, tiny_shapes, tmp_path, name):
    cfg, _, authors, ours = authors_files[name]
    outputs = []
    for weights in (authors, ours):
        out = tmp_path / weights.stem
        results = out / ('results.pkl' if name == 'retinanet' else 'masks')
        run_main('test.py', [
            FAMILIES[name][0],
            str(weights), '--work-dir',
            str(out), '--out',
            str(results), '--cfg-options', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False'
        ] + (['model.test_cfg.score_thr=0.0'] if name == 'retinanet' else []),
                 env={'MMPVT_DEMO_DATA': f'{tiny_shapes}/'})
        outputs.append(out)
    if name == 'retinanet':
        import mmengine
        got, expected = (mmengine.load(str(o / 'results.pkl')) for o in outputs)
        assert len(got) == len(expected) == 4
        for a, b in zip(got, expected):
            assert torch.equal(a['pred_instances']['bboxes'], b['pred_instances']['bboxes'])
            assert torch.equal(a['pred_instances']['labels'], b['pred_instances']['labels'])
    else:
        import cv2
        got, expected = (sorted((o / 'masks').rglob('*.png')) for o in outputs)
        assert len(got) == len(expected) == 4
        for a, b in zip(got, expected):
            assert np.array_equal(cv2.imread(str(a)), cv2.imread(str(b)))


def _without(path, key, dst):
    ckpt = torch.load(path)
    del ckpt['state_dict'][key]
    torch.save(ckpt, dst)
    return dst


def test_backbone_that_cannot_be_matched_is_an_error_naming_the_key(authors_files, tmp_path):
    cfg, _, authors, _ = authors_files['retinanet']
    broken = _without(authors, 'backbone.block1.0.attn.q.weight', tmp_path / 'broken.pth')
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing.*stages\.0\.blocks\.0\.attn\.q\.weight'):
        load_checkpoint(build_model(cfg), str(broken), map_location='cpu')


def test_tools_test_refuses_a_file_whose_backbone_does_not_fit(authors_files, tiny_shapes,
                                                               tmp_path):
    _, _, authors, _ = authors_files['retinanet_v2']  # a PVTv2 file given to a PVT config
    out = run_main('test.py', [FAMILIES['retinanet'][0],
                               str(authors), '--work-dir',
                               str(tmp_path)], env={'MMPVT_DEMO_DATA': f'{tiny_shapes}/'},
                   check=False)
    assert out.returncode != 0
    assert "is a PVTv2 checkpoint (official layout); it cannot be loaded into PVT" in \
        out.stdout + out.stderr


def test_checkpoint_without_backbone_weights_is_an_error(authors_files):
    cfg, model, _, _ = authors_files['retinanet']
    heads_only = {k: v for k, v in model.state_dict().items() if not k.startswith('backbone.')}
    with pytest.raises(CheckpointMismatchError, match="no weights for its PVT backbone"):
        build_model(cfg).load_state_dict(heads_only, strict=False)


def test_detr_file_with_an_unknown_transformer_key_is_refused(authors_files, tmp_path):
    cfg, _, authors, _ = authors_files['detr']
    ckpt = torch.load(authors)
    sd = ckpt['state_dict']
    sd['bbox_head.transformer.encoder.layers.0.self_attn.in_proj_weight'] = sd.pop(
        'bbox_head.transformer.encoder.layers.0.attentions.0.attn.in_proj_weight')
    torch.save(ckpt, tmp_path / 'old_detr.pth')
    with pytest.raises(CheckpointMismatchError, match='mmdet 2.x DETR checkpoint that does not '
                       'map'):
        load_checkpoint(build_model(cfg), str(tmp_path / 'old_detr.pth'), map_location='cpu')


# ---- tools/convert_checkpoint.py writes the whole model ---------------------------------------
def test_convert_tool_writes_the_whole_model_in_mmpvt_layout(authors_files, tmp_path, log_lines):
    cfg, model, authors, _ = authors_files['retinanet']
    out = run_main('convert_checkpoint.py', [str(authors), str(tmp_path / 'whole.pth')])
    # 161 entries in the key table minus cls_token, norm.weight/bias, head.weight/bias
    assert 'whole model: backbone PVT tiny (official layout, 156 tensors) converted' in out.stdout
    ckpt = torch.load(tmp_path / 'whole.pth')
    assert ckpt['meta']['CLASSES'] == CLASSES and ckpt['meta']['mmpvt']['source_layout'] == \
        'official'
    assert tensors_equal(ckpt['state_dict'], model.state_dict())  # loads with no conversion


@pytest.mark.parametrize('name', ['detr', 'sem_fpn', 'retinanet_v2'])
def test_converted_whole_model_equals_the_model_it_was_made_from(authors_files, tmp_path, name):
    from mmpvt.apis.convert import convert_checkpoint_file
    _, model, authors, _ = authors_files[name]
    info = convert_checkpoint_file(str(authors), str(tmp_path / 'whole.pth'))
    assert info['whole_model'] and info['renamed_detr'] == (
        len(mmdet213_detr_keys()) - 8 if name == "detr" else 0)  # fc_cls, reg_ffn, fc_reg: 8 stay
    assert tensors_equal(torch.load(tmp_path / 'whole.pth')['state_dict'], model.state_dict())


def test_convert_tool_backbone_only_writes_the_backbone(authors_files, tmp_path):
    _, model, authors, _ = authors_files['mask_rcnn']
    run_main('convert_checkpoint.py', [str(authors), str(tmp_path / 'bb.pth'), '--backbone-only'])
    expected = {
        k[len('backbone.'):]: v
        for k, v in model.state_dict().items() if k.startswith('backbone.')
    }
    assert tensors_equal(torch.load(tmp_path / 'bb.pth')['state_dict'], expected)
