"""Whole models through ONNX: tools/deploy/export_onnx.py writes a dynamic-size graph, and the
onnxruntime + numpy path (mmpvt_runtime, no PyTorch) gives what ``predict`` gives;
tools/deploy/onnx_infer.py writes what tools/image_demo.py writes.

export_onnx.py runs as its main(argv) in this process (helpers.run_main), as a script once (the
refusal test); onnx_infer.py in its own process with PyTorch blocked, the point of it."""
import json
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmpvt  # noqa: F401
from mmpvt_runtime import OnnxModel
from ..helpers import REPO, assert_same_detections, build_model, run_command, run_main

pytestmark = pytest.mark.slow  # builds, exports and runs whole models

RETINA = 'configs/demo/retinanet_pvt_t.py'
FPN = 'configs/demo/sem_fpn_pvt_t.py'
MASK_RCNN = 'configs/demo/mask_rcnn_pvt_t.py'
DETR = 'configs/demo/detr_pvt_t.py'


def _checkpoint(config, path):
    cfg = Config.fromfile(f'{REPO}/{config}')
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    if hasattr(getattr(model, 'bbox_head', None), 'retina_cls'):
        # a random RetinaNet scores ~0.01 < score_thr: make it ~0.18
        torch.nn.init.constant_(model.bbox_head.retina_cls.bias, -1.5)
    meta = dict(classes=cfg.metainfo['classes'], palette=cfg.metainfo['palette'])
    torch.save({'state_dict': model.state_dict(), 'meta': dict(dataset_meta=meta)}, path)
    return cfg


@pytest.fixture(scope='module')
def retinanet(tmp_path_factory, tiny_shapes):
    root = tmp_path_factory.mktemp('retina')
    cfg = _checkpoint(RETINA, root / 'model.pth')
    out = run_main(
        'deploy/export_onnx.py',
        [RETINA, root / 'model.pth', root / 'model.onnx', '--dynamic', '--shape', '256', '256'],
        env={'MMPVT_DEMO_DATA': f'{tiny_shapes}/'})
    assert f'(det, opset 17, dynamic input) -> {root / "model.onnx"}' in out.stdout
    return cfg, root


def test_onnx_detections_equal_predict_at_another_size(retinanet, tiny_shapes):
    from mmdet.apis import DetInferencer
    cfg, root = retinanet
    inferencer = DetInferencer(model=cfg, weights=str(root / 'model.pth'), device='cpu',
                               show_progress=False)
    model = OnnxModel(root / 'model.onnx')
    images = sorted((tiny_shapes / 'images' / 'validation').glob('*.png'))  # 96x128, not 256
    for path in images:
        expected = inferencer(str(path), return_datasamples=True)['predictions'][0].pred_instances
        got = model(cv2.imread(str(path)))
        assert_same_detections(got, expected)


def _run_onnx_infer_without_torch(args):
    code = (
        'import sys, runpy; sys.modules["torch"] = None; '  # any `import torch` now fails
        f'sys.argv = ["onnx_infer.py", *{[str(a) for a in args]!r}]; '
        'runpy.run_path("tools/deploy/onnx_infer.py", run_name="__main__")')
    return run_command([sys.executable, '-c', code])


def test_onnx_infer_cli_runs_without_pytorch(retinanet, tiny_shapes, tmp_path):
    _, root = retinanet
    images = tiny_shapes / 'images' / 'validation'
    out = _run_onnx_infer_without_torch(
        [images, root / 'model.onnx', '--out-dir', tmp_path, '--score-thr', '0.15'])
    assert out.stdout.count(' detections -> ') == 4
    for path in images.glob('*.png'):
        drawn, original = cv2.imread(str(tmp_path / 'vis' / path.name)), cv2.imread(str(path))
        assert drawn.shape == original.shape and not np.array_equal(drawn, original)


def test_a_write_that_cannot_finish_stops_onnx_infer_and_leaves_the_previous_files(
        retinanet, tiny_shapes, tmp_path):
    # RLIMIT_FSIZE: a write past 16 bytes fails with EFBIG, as on a full disk
    _, root = retinanet
    image = sorted((tiny_shapes / 'images' / 'validation').glob('*.png'))[0]
    previous = {
        tmp_path / 'preds' / f'{image.stem}.json': b'{"previous": "run"}',
        tmp_path / 'vis' / image.name: b'previous drawing'
    }
    for path, data in previous.items():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    code = ('import resource, runpy, signal, sys; sys.modules["torch"] = None; '
            'signal.signal(signal.SIGXFSZ, signal.SIG_IGN); '
            'resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16)); '
            f'sys.argv = ["onnx_infer.py", {str(image)!r}, {str(root / "model.onnx")!r}, '
            f'"--out-dir", {str(tmp_path)!r}]; '
            'runpy.run_path("tools/deploy/onnx_infer.py", run_name="__main__")')
    result = run_command([sys.executable, '-c', code], check=False)
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f'onnx_infer: could not write {tmp_path / "preds" / image.stem}.json: File too large; '
        'the file there before, if any, is left as it was'
    ]
    assert {path: path.read_bytes() for path in tmp_path.rglob('*') if path.is_file()} == previous


def test_onnx_infer_writes_the_files_image_demo_writes(retinanet, tiny_shapes, tmp_path):
    # image_demo = DetInferencer(out_dir=..., no_save_pred=False): OUT/vis/<image> and
    # OUT/preds/<stem>.json with the same keys and the same detections
    from mmdet.apis import DetInferencer
    cfg, root = retinanet
    images = sorted((tiny_shapes / 'images' / 'validation').glob('*.png'))[:2]
    inferencer = DetInferencer(model=cfg, weights=str(root / 'model.pth'), device='cpu',
                               show_progress=False)
    inferencer([str(p) for p in images], out_dir=str(tmp_path / 'mmdet'), no_save_pred=False)
    for path in images:
        _run_onnx_infer_without_torch([path, root / 'model.onnx', '--out-dir', tmp_path / 'onnx'])
    listing = [
        sorted(
            p.relative_to(tmp_path / which).as_posix() for p in (tmp_path / which).rglob('*')
            if p.is_file()) for which in ('mmdet', 'onnx')
    ]
    assert listing[0] == listing[1] == sorted([f'vis/{p.name}' for p in images] +
                                              [f'preds/{p.stem}.json' for p in images])
    for path in images:
        expected, got = (
            json.loads((tmp_path / which / 'preds' / f'{path.stem}.json').read_text())
            for which in ('mmdet', 'onnx'))
        assert list(got) == list(expected) == ['labels', 'scores', 'bboxes']
        assert_same_detections({
            k: np.asarray(v)
            for k, v in got.items()
        }, {
            k: np.asarray(v)
            for k, v in expected.items()
        })


@pytest.fixture(scope='module')
def fpn(tmp_path_factory, tiny_shapes):
    """Semantic FPN exported at 256x256: (config, its directory, MMSegInferencer)."""
    from mmseg.apis import MMSegInferencer

    from mmpvt.deploy.export import export_model
    root = tmp_path_factory.mktemp('fpn')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('MMPVT_DEMO_DATA', f'{tiny_shapes}/')
        cfg = _checkpoint(FPN, root / 'model.pth')
        meta = export_model(f'{REPO}/{FPN}', str(root / 'model.pth'), str(root / 'fpn.onnx'),
                            shape=(256, 256))
    assert meta['resize'] == dict(type='align', scale=[256, 256], size_divisor=32)
    return cfg, root, MMSegInferencer(model=cfg, weights=str(root / 'model.pth'), device='cpu')


def test_onnx_segmentation_maps_equal_predict(fpn, tiny_shapes):
    _, root, inferencer = fpn
    model = OnnxModel(root / 'fpn.onnx')
    different = total = 0
    for path in sorted((tiny_shapes / 'images' / 'validation').glob('*.png')):
        expected = inferencer(str(path), return_datasamples=True).pred_sem_seg.data[0].numpy()
        got = model(cv2.imread(str(path)))['seg_map']
        assert got.shape == expected.shape == (96, 128)
        different += int((got != expected).sum())
        total += got.size
    assert different == 0, (different, total)


def test_onnx_infer_draws_segmentation_as_image_demo_does(fpn, tiny_shapes, tmp_path):
    # mmseg draws with cv2 (palette, opacity 0.8, class names on boxes): equal pixel for pixel
    _, root, inferencer = fpn
    images = tiny_shapes / 'images' / 'validation'
    inferencer(str(images), out_dir=str(tmp_path / 'mmseg'), img_out_dir='vis')
    _run_onnx_infer_without_torch([images, root / 'fpn.onnx', '--out-dir', tmp_path / 'onnx'])
    for path in sorted(images.glob('*.png')):
        expected = cv2.imread(str(tmp_path / 'mmseg' / 'vis' / path.name))
        got = cv2.imread(str(tmp_path / 'onnx' / 'vis' / path.name))
        np.testing.assert_array_equal(got, expected)
        class_map = cv2.imread(
            str(tmp_path / 'onnx' / 'pred' / f'{path.stem}_pred.png'), cv2.IMREAD_UNCHANGED)
        assert class_map.shape == expected.shape[:2] and class_map.dtype == np.uint8


def test_onnx_mask_rcnn_equals_predict_at_another_size(tmp_path, tiny_shapes, monkeypatch):
    from mmdet.apis import DetInferencer

    from mmpvt.deploy.export import export_model
    monkeypatch.setenv('MMPVT_DEMO_DATA', f'{tiny_shapes}/')
    cfg = _checkpoint(MASK_RCNN, tmp_path / 'model.pth')
    meta = export_model(f'{REPO}/{MASK_RCNN}', str(tmp_path / 'model.pth'),
                        str(tmp_path / 'mask.onnx'), shape=(256, 256))
    assert meta['graphs'] == dict(roi_bbox='mask.roi_bbox.onnx', roi_mask='mask.roi_mask.onnx')
    inferencer = DetInferencer(model=cfg, weights=str(tmp_path / 'model.pth'), device='cpu',
                               show_progress=False)
    model = OnnxModel(tmp_path / 'mask.onnx')
    for path in sorted((tiny_shapes / 'images' / 'validation').glob('*.png'))[:2]:  # 96x128
        expected = inferencer(str(path), return_datasamples=True)['predictions'][0].pred_instances
        got = model(cv2.imread(str(path)))
        assert got['masks'].shape == tuple(expected.masks.shape) == (100, 96, 128)
        assert_same_detections(got, expected)
    (tmp_path / 'mask.roi_mask.onnx').unlink()
    with pytest.raises(ValueError, match='needs its roi_mask graph .*mask.roi_mask.onnx, which '
                       'is missing'):
        OnnxModel(tmp_path / 'mask.onnx')


def _assert_equals_predict_on_one_image(cfg, root, onnx_file, tiny_shapes):
    """The exported file against DetInferencer on the first validation image (96x128, resized
    to 192x256, not the export size); returns the inferencer."""
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=cfg, weights=str(root / 'model.pth'), device='cpu',
                               show_progress=False)
    path = next((tiny_shapes / 'images' / 'validation').glob('*.png'))
    expected = inferencer(str(path), return_datasamples=True)['predictions'][0].pred_instances
    assert_same_detections(OnnxModel(root / onnx_file)(cv2.imread(str(path))), expected)
    return inferencer


def test_onnx_detr_equals_predict_and_reads_the_padding_mask(tmp_path, tiny_shapes, monkeypatch):
    import onnxruntime as ort
    from mmdet.structures import DetDataSample

    from mmpvt.deploy.export import export_model
    monkeypatch.setenv('MMPVT_DEMO_DATA', f'{tiny_shapes}/')
    cfg = _checkpoint(DETR, tmp_path / 'model.pth')
    meta = export_model(f'{REPO}/{DETR}', str(tmp_path / 'model.pth'), str(tmp_path / 'detr.onnx'),
                        shape=(256, 256))
    assert (meta['task'], meta['max_per_img']) == ('detr', 100)
    inferencer = _assert_equals_predict_on_one_image(cfg, tmp_path, 'detr.onnx', tiny_shapes)
    # One image padded from 150 to 256 rows. (With pad_size_divisor 32 = the feature stride, a
    # single image's padding never reaches a feature cell; a batch of mixed sizes pads more.)
    model = inferencer.model
    x = torch.randn(1, 3, 256, 224)
    sample = DetDataSample(metainfo=dict(img_shape=(150, 224), batch_input_shape=(256, 224)))
    with torch.no_grad():
        hidden = model.forward_transformer(model.extract_feat(x), [sample])['hidden_states']
        cls_score, bbox_pred = (t[-1] for t in model.bbox_head(hidden[-1:]))
    pad_mask = np.ones((1, 256, 224), np.uint8)
    pad_mask[:, :150] = 0
    session = ort.InferenceSession(str(tmp_path / 'detr.onnx'), providers=['CPUExecutionProvider'])
    got = session.run(None, {'input': x.numpy(), 'pad_mask': pad_mask})
    np.testing.assert_allclose(got[0], cls_score.numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(got[1], bbox_pred.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize('family', ['atss', 'gfl'])
def test_onnx_atss_and_gfl_equal_predict(family, tmp_path, tiny_shapes):
    """ATSS (centerness factor) and GFL (distributions integrated in the graph, distances
    decoded in numpy), on the authors' config with PVTv2-B0, 4 classes and a 256 test size."""
    from mmpvt.deploy.export import export_model
    config = tmp_path / f'{family}.py'
    config.write_text(
        f"_base_ = '{REPO}/configs/{family}/pvt_v2_b2_3x_ms.py'\n"
        "model = dict(backbone=dict(arch='b0', init_cfg=None), bbox_head=dict(num_classes=4),\n"
        "             neck=dict(in_channels=[32, 64, 160, 256]))\n"
        "test_dataloader = dict(dataset=dict(pipeline=[dict(type='LoadImageFromFile'),\n"
        "    dict(type='Resize', scale=(256, 256), keep_ratio=True), dict(type='PackDetInputs',\n"
        "    meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]))\n")
    cfg = Config.fromfile(str(config))
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    cls = model.bbox_head.atss_cls if family == 'atss' else model.bbox_head.gfl_cls
    torch.nn.init.constant_(cls.bias, -1.5)  # random scores above score_thr: 100 detections
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'model.pth')
    meta = export_model(
        str(config), str(tmp_path / 'model.pth'), str(tmp_path / 'm.onnx'), shape=(256, 256))
    assert (meta['coder']['type'], meta['score_factors']) == \
        {'atss': ('delta', True), 'gfl': ('distance', False)}[family]
    _assert_equals_predict_on_one_image(cfg, tmp_path, 'm.onnx', tiny_shapes)


def test_onnx_cascade_mask_rcnn_equals_predict(tmp_path, tiny_shapes):
    """The authors' Cascade Mask R-CNN config with PVTv2-B0 and 4 classes: three bbox and three
    mask graphs, RoIs refined between stages in numpy, stage logits and masks averaged."""
    from mmpvt.deploy.export import export_model
    cfg = Config.fromfile(f'{REPO}/configs/cascade_mask_rcnn/pvt_v2_b2_3x_ms.py')
    cfg.model.backbone.update(arch='b0', init_cfg=None)
    cfg.model.neck.in_channels = [32, 64, 160, 256]
    for head in (*cfg.model.roi_head.bbox_head, cfg.model.roi_head.mask_head):
        head.num_classes = 4
    cfg.test_dataloader.dataset.pipeline[1].scale = (256, 256)
    cfg.model.test_cfg.rpn.max_per_img = 300  # of 1000: each stage's RoI work a third
    cfg.dump(str(tmp_path / 'cascade.py'))
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'model.pth')
    meta = export_model(
        str(tmp_path / 'cascade.py'), str(tmp_path / 'model.pth'), str(tmp_path / 'c.onnx'),
        shape=(256, 256))
    assert sorted(
        meta['graphs']) == [f'roi_{kind}_{s}' for kind in ('bbox', 'mask') for s in range(3)]
    _assert_equals_predict_on_one_image(cfg, tmp_path, 'c.onnx', tiny_shapes)


def test_export_refuses_what_it_cannot_export_with_one_clear_line(tmp_path, tiny_shapes):
    from mmpvt.deploy.export import export_model
    with pytest.raises(
            ValueError, match=r"pvt_v2_b2_3x_ms.py: ONNX export supports two-stage "
            r"detectors with \('StandardRoIHead', 'CascadeRoIHead'\) as roi_head; "
            "got SparseRoIHead"):
        export_model(f'{REPO}/configs/sparse_rcnn/pvt_v2_b2_3x_ms.py', 'README.md',
                     str(tmp_path / 'x.onnx'))
    with pytest.raises(ValueError, match='two-stage detectors export with the TorchScript '
                       'exporter only'):
        export_model(f'{REPO}/{MASK_RCNN}', 'README.md', str(tmp_path / 'x.onnx'), dynamo=True)
    # the script as a file (its own process, exit status of sys.exit); the fixtures call main
    out = run_command(
        ['tools/deploy/export_onnx.py', RETINA, 'README.md',
         str(tmp_path / 'x.onnx')], check=False, env={'MMPVT_DEMO_DATA': f'{tiny_shapes}/'})
    assert out.returncode == 1
    assert 'export_onnx: Could not read the checkpoint README.md' in out.stderr
    assert not (tmp_path / 'x.onnx').exists()


# ---- classifiers: the ImageNet configs (v1: class token, v2: average pooling) ----------------
CLASSIFIERS = ['configs/imagenet/pvt_t_300e.py', 'configs/imagenet/pvt_v2_b0_300e.py']


@pytest.fixture(scope='module', params=CLASSIFIERS, ids=['pvt_t', 'pvt_v2_b0'])
def classifier(request, tmp_path_factory):
    """(config, built model with the checkpoint's weights, export folder), exported by the tool
    with symbolic batch and size; random weights, the head's made larger so that the classes'
    probabilities differ."""
    root = tmp_path_factory.mktemp('cls')
    cfg = Config.fromfile(f'{REPO}/{request.param}')
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    torch.nn.init.normal_(model.head.fc.weight, std=0.5)
    torch.save({'state_dict': model.state_dict()}, root / 'model.pth')
    out = run_main('deploy/export_onnx.py',
                   [request.param, root / 'model.pth', root / 'model.onnx', '--dynamic'])
    assert f'(cls, opset 17, dynamic input) -> {root / "model.onnx"}' in out.stdout
    return cfg, model.eval(), root


@pytest.mark.parametrize('shape', [(2, 3, 224, 224), (1, 3, 256, 320), (3, 3, 160, 192)])
def test_onnx_classifier_logits_equal_torch_at_any_batch_and_size(classifier, shape):
    import onnxruntime as ort
    _, model, root = classifier
    session = ort.InferenceSession(str(root / 'model.onnx'), providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == ['logits']
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = model(x, mode='tensor')
    got = session.run(None, {'input': x.numpy()})[0]
    assert got.shape == (shape[0], 1000)
    assert np.abs(got - expected.numpy()).max() <= 1e-4 * max(1.0, expected.abs().max().item())


def test_runtime_prepares_images_as_mmpretrains_test_pipeline(classifier):
    # ResizeEdge(256, 'short', pillow bicubic) + CenterCrop(224), mmpretrain's own transforms
    from mmengine.dataset import Compose
    from mmpretrain.registry import TRANSFORMS

    from mmpvt_runtime import resize_and_crop
    cfg, _, root = classifier
    steps = [
        TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline
        if t.type not in ('LoadImageFromFile', 'PackInputs')
    ]
    image = np.random.RandomState(0).randint(0, 256, (300, 451, 3)).astype(np.uint8)
    expected = Compose(steps)(dict(img=image.copy()))['img']
    got = resize_and_crop(image, OnnxModel(root / 'model.onnx').meta)
    assert got.shape == expected.shape == (224, 224, 3)
    assert np.array_equal(got, expected)


def test_onnx_top5_equals_the_classification_inferencer(classifier, tiny_shapes):
    from mmpretrain.apis import ImageClassificationInferencer
    cfg, _, root = classifier
    inferencer = ImageClassificationInferencer(cfg, pretrained=str(root / 'model.pth'),
                                               device='cpu')
    model = OnnxModel(root / 'model.onnx')
    assert model.classes[:2] == ['tench, Tinca tinca', 'goldfish, Carassius auratus']
    for path in sorted((tiny_shapes / 'images' / 'validation').glob('*.png'))[:2]:
        expected = inferencer(str(path))[0]['pred_scores']
        got = model(cv2.imread(str(path)))
        assert np.abs(got['probs'] - expected).max() < 1e-5
        assert got['labels'].tolist() == np.argsort(-expected, kind='stable')[:5].tolist()


def test_onnx_infer_prints_the_top5_without_pytorch(classifier, tiny_shapes, tmp_path):
    _, _, root = classifier
    image = sorted((tiny_shapes / 'images' / 'validation').glob('*.png'))[0]
    out = _run_onnx_infer_without_torch([image, root / 'model.onnx', '--out-dir', tmp_path])
    ranks = [line.split()[0] for line in out.stdout.splitlines() if line.startswith('  ')]
    assert ranks == ['1.', '2.', '3.', '4.', '5.']
    pred = json.loads((tmp_path / 'preds' / f'{image.stem}.json').read_text())
    assert len(pred['pred_scores']) == 1000 and len(pred['topk']) == 5
    assert pred['topk'][0][0] == pred['pred_label']
    assert (tmp_path / 'vis' / image.name).is_file()
