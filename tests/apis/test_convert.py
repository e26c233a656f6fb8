"""Specification of checkpoint-file conversion (mmpvt.apis.convert.convert_checkpoint_file) and
of the tool that runs it (tools/convert_checkpoint.py). Whole detector/segmentor files are
converted in test_authors_checkpoints.py.

An ImageNet classifier (a linear head beside the backbone) is written as mmpretrain's
ImageClassifier of configs/imagenet/ (``backbone.*``, ``head.fc.*``); a backbone (no head), or any
file with ``backbone_only``, as mmpvt's backbone. The classifiers here are the random official
weights of the smallest variant of each family in the official, timm and transformers layouts,
their head cut to NUM_CLASSES rows to keep them small."""
import os
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint

from mmpvt.apis.convert import convert_checkpoint_file, describe_conversion
from mmpvt.families import identify
from mmpvt.models import PVT, CheckpointMismatchError, PVTv2
from mmpvt.models.builder import build_from_config
from mmpvt.models.checkpoints import fit_state_dict
from ..helpers import (REPO, assert_holds_official_classifier, assert_holds_official_weights,
                       build_classifier, by_family, family, load_pretrained, official_key_table,
                       official_weights, run_command, run_main, saved_checkpoint)
from ..models.reference_layouts import LAYOUT_CASES, in_layout

NUM_CLASSES = 5
# The file each family is converted from: (layout, tensors the backbone keeps, dropped entries).
SOURCES = {
    'tiny': ('official', 156, [
        'pos_embed4[:, 0] (class-token position)', 'cls_token', 'norm.weight', 'norm.bias',
        'head.weight', 'head.bias'
    ]),
    'b0': ('transformers', 176, ['classifier.weight', 'classifier.bias'])
}
# The classifier's head in each layout (classification.md Sec. 1): transformers calls it
# ``classifier``, the authors and timm ``head``.
HEAD = {'official': 'head.', 'timm': 'head.', 'transformers': 'classifier.'}
CLASSIFIER_CASES = [pytest.param(p.values, id=p.id) for p in LAYOUT_CASES if p.values[1] in HEAD]
BACKBONE_CASES = [p for p in LAYOUT_CASES if p.values[1] not in HEAD]  # no head in the file


def small_head(official):
    """`official` with its head cut to the first NUM_CLASSES classes."""
    return dict(official,
                **{k: official[k][:NUM_CLASSES].clone()
                   for k in ('head.weight', 'head.bias')})


@pytest.fixture(params=by_family('tiny', 'b0'))
def source(request, tmp_path):
    """(arch, path of a checkpoint of it in SOURCES' layout, its official weights)."""
    arch = request.param
    official = official_weights(arch)
    path = tmp_path / f'{arch}_{SOURCES[arch][0]}.pth'
    torch.save(in_layout(SOURCES[arch][0], official), path)
    return arch, path, official


@pytest.fixture(params=CLASSIFIER_CASES)
def classifier_file(request, tmp_path):
    """(arch, layout, path of a NUM_CLASSES-class classifier in that layout, its official
    weights)."""
    arch, layout = request.param
    official = small_head(official_weights(arch))
    path = tmp_path / f'{arch}_{layout}.pth'
    torch.save(in_layout(layout, official), path)
    return arch, layout, path, official


# ---- classifiers ---------------------------------------------------------------------------
def test_a_classifier_is_written_as_mmpretrains_image_classifier(classifier_file, tmp_path):
    arch, layout, src, official = classifier_file
    out = tmp_path / 'converted' / 'out.pth'
    os.makedirs(out.parent)
    info = convert_checkpoint_file(str(src), str(out))
    assert info == dict(
        family=family(arch), layout=layout, arch=arch, num_tensors=len(official_key_table(arch)),
        dropped=[], whole_model=False, classifier=True, num_classes=NUM_CLASSES, other_tensors=0,
        renamed_detr=0, layer_norm_eps=None)
    saved = torch.load(out, weights_only=True)
    assert set(saved['state_dict']) == set(build_classifier(arch, NUM_CLASSES).state_dict())
    assert {
        k: saved['meta']['mmpvt'][k]
        for k in ('family', 'source_layout', 'arch', 'num_classes')
    } == dict(family=family(arch), source_layout=layout, arch=arch, num_classes=NUM_CLASSES)
    assert os.listdir(out.parent) == ['out.pth']  # no temporary left behind


def test_a_written_classifier_holds_the_source_tensors(classifier_file, tmp_path):
    """The head bit-equal; backbone tensors renamed by hand (a v1 classifier keeps its class
    token, final norm and the whole stage-4 position table, class-token row included)."""
    arch, _, src, official = classifier_file
    convert_checkpoint_file(str(src), str(tmp_path / 'out.pth'))
    sd = torch.load(tmp_path / 'out.pth', weights_only=True)['state_dict']
    assert_holds_official_classifier(sd, official)


@pytest.mark.parametrize('arch,config', [
    pytest.param('tiny', 'pvt_t_300e', id='PVT-tiny'),
    pytest.param('b0', 'pvt_v2_b0_300e', id='PVTv2-b0')
])
def test_a_written_classifier_loads_strictly_into_the_imagenet_configs_model(
        arch, config, tmp_path):
    """As tools/test.py CONFIG OUT loads it: the strict fit of mmpvt.CheckpointFitHook finds
    exactly the model's keys, then mmengine's load_checkpoint, strict."""
    official = small_head(official_weights(arch))
    torch.save(in_layout('official', official), tmp_path / 'src.pth')
    convert_checkpoint_file(str(tmp_path / 'src.pth'), str(tmp_path / 'out.pth'))
    cfg = Config.fromfile(f'{REPO}/configs/imagenet/{config}.py')
    cfg.model.head.num_classes = NUM_CLASSES
    model = build_from_config(cfg, pretrained=False)
    checkpoint = torch.load(tmp_path / 'out.pth', weights_only=True)
    fit_state_dict(model, checkpoint, 'out.pth', strict=True)
    assert set(checkpoint['state_dict']) == set(model.state_dict())
    load_checkpoint(model, str(tmp_path / 'out.pth'), strict=True)
    assert torch.equal(model.head.fc.weight, official['head.weight'])


def test_the_summary_says_what_was_written(tmp_path):
    torch.save(in_layout('timm', small_head(official_weights('b0'))), tmp_path / 'b0.pth')
    info = convert_checkpoint_file(str(tmp_path / 'b0.pth'), str(tmp_path / 'out.pth'))
    assert describe_conversion(info) == 'classifier: PVTv2 b0, timm layout, 5 classes, 178 tensors'
    info = convert_checkpoint_file(
        str(tmp_path / 'b0.pth'), str(tmp_path / 'bb.pth'), backbone_only=True)
    assert describe_conversion(info) == 'PVTv2, timm layout, arch b0, 176 tensors'


def test_a_head_that_does_not_take_the_backbones_features_is_refused(tmp_path):
    official = official_weights('b0')  # C4 = 256
    official.update({
        'head.weight': torch.zeros(NUM_CLASSES, 512),
        'head.bias': torch.zeros(NUM_CLASSES)
    })
    torch.save(official, tmp_path / 'b0.pth')
    with pytest.raises(
            CheckpointMismatchError, match=r"b0\.pth: the classifier's head takes 512 "
            r'features, but the PVTv2 b0 backbone it '
            r'holds gives 256'):
        convert_checkpoint_file(str(tmp_path / 'b0.pth'), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


# ---- backbones -----------------------------------------------------------------------------
def test_backbone_only_writes_the_backbone_of_a_classifier_in_mmpvt_layout(source, tmp_path):
    arch, src, official = source
    out = tmp_path / 'converted' / 'out.pth'
    os.makedirs(out.parent)
    layout, num_tensors, dropped = SOURCES[arch]
    assert convert_checkpoint_file(str(src), str(out), backbone_only=True) == dict(
        family=family(arch), layout=layout, arch=arch, num_tensors=num_tensors, dropped=dropped,
        whole_model=False, classifier=False, num_classes=None, other_tensors=0, renamed_detr=0,
        layer_norm_eps=None)
    saved = torch.load(out, weights_only=True)
    assert identify(saved['state_dict']) == (family(arch), 'mmpvt')
    assert {
        k: saved['meta'][k]
        for k in ('family', 'source_layout', 'arch')
    } == dict(family=family(arch), source_layout=layout, arch=arch)
    assert_holds_official_weights(load_pretrained(out, arch), official)
    assert os.listdir(out.parent) == ['out.pth']  # no temporary left behind


@pytest.mark.parametrize('arch,layout', BACKBONE_CASES)
def test_a_backbone_without_head_is_written_as_a_backbone(arch, layout, tmp_path):
    official = official_weights(arch)
    torch.save(in_layout(layout, official), tmp_path / 'src.pth')
    info = convert_checkpoint_file(str(tmp_path / 'src.pth'), str(tmp_path / 'out.pth'))
    assert (info['classifier'], info['num_classes'], info['whole_model']) == (False, None, False)
    saved = torch.load(tmp_path / 'out.pth', weights_only=True)['state_dict']
    backbone = PVT(arch) if family(arch) == 'PVT' else PVTv2(arch)
    assert set(saved) == set(backbone.state_dict())
    assert_holds_official_weights(load_pretrained(tmp_path / 'out.pth', arch), official)


def test_failed_conversion_leaves_destination_untouched(tmp_path):
    torch.save(official_weights('small'), tmp_path / 'small.pth')
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'previous content')
    with pytest.raises(CheckpointMismatchError):
        convert_checkpoint_file(str(tmp_path / 'small.pth'), str(dst), arch='tiny')
    assert dst.read_bytes() == b'previous content'
    assert set(os.listdir(tmp_path)) == {'small.pth', 'out.pth'}  # no temporary left behind


def test_an_arch_of_the_other_family_is_refused(tmp_path):
    torch.save(official_weights('b0'), tmp_path / 'b0.pth')
    with pytest.raises(
            CheckpointMismatchError, match=r'is a PVTv2 checkpoint \(official layout\) '
            r'but --arch tiny is not a PVTv2 arch'):
        convert_checkpoint_file(str(tmp_path / 'b0.pth'), str(tmp_path / 'out.pth'), arch='tiny')
    assert not (tmp_path / 'out.pth').exists()


# ---- the tool ----------------------------------------------------------------------------------
@pytest.mark.slow  # runs the tool (as its main, in this process)
def test_convert_tool_says_what_it_converted(source, tmp_path):
    arch, src, _ = source
    layout, num_tensors, dropped = SOURCES[arch]
    out = tmp_path / 'out.pth'
    result = run_main('convert_checkpoint.py', [str(src), str(out)])
    assert result.stdout.splitlines()[-1] == (
        f'converted {src} (classifier: {family(arch)} {arch}, {layout} layout, 1000 classes, '
        f'{len(official_key_table(arch))} tensors) -> {out}')
    result = run_main('convert_checkpoint.py', [str(src), str(out), '--backbone-only'])
    assert result.stdout.splitlines()[-2:] == [
        f'converted {src} ({family(arch)}, {layout} layout, arch {arch}, {num_tensors} tensors) '
        f'-> {out}', 'dropped classification-only entries: ' + ', '.join(dropped)
    ]


def test_convert_tool_prints_one_line_for_an_unreadable_file(tmp_path):
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    result = run_main(
        'convert_checkpoint.py',
        [str(tmp_path / 'text.pth'), str(tmp_path / 'out.pth')], check=False)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.startswith('convert_checkpoint: Could not read the checkpoint')
    assert not (tmp_path / 'out.pth').exists()


# The tool in its own process with RLIMIT_FSIZE: a write past 64 KiB fails (EFBIG), as on a
# full disk.
FULL_DISK = ('import resource, runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); '
             'resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16)); sys.argv = {argv!r}; '
             'runpy.run_path(sys.argv[0], run_name="__main__")')


@pytest.mark.slow  # runs the tool in a subprocess
def test_a_conversion_the_disk_cannot_hold_is_one_line_and_leaves_the_previous_file(tmp_path):
    torch.save(official_weights('b0'), tmp_path / 'src.pth')
    (tmp_path / 'out.pth').write_bytes(b'the previous conversion')
    argv = [
        f'{REPO}/tools/convert_checkpoint.py',
        str(tmp_path / 'src.pth'),
        str(tmp_path / 'out.pth')
    ]
    result = run_command([sys.executable, '-c', FULL_DISK.format(argv=argv)], check=False)
    (line, ) = result.stderr.splitlines()
    assert result.returncode == 1
    assert line.startswith(f'convert_checkpoint: could not write {tmp_path / "out.pth"} (')
    assert line.endswith('MiB free there); the file there before, if any, is left as it was')
    assert (tmp_path / 'out.pth').read_bytes() == b'the previous conversion'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.pth', 'src.pth']  # no temporary


def test_a_state_dict_entry_that_is_not_a_tensor_is_named(tmp_path):
    sd = PVT('tiny').state_dict()
    sd['stages.0.patch_embed.proj.weight'] = 'a string'
    with pytest.raises(
            ValueError, match=r"the state dict entry 'stages\.0\.patch_embed\.proj\."
            r"weight' holds a str \('a string'\), expected a tensor"):
        convert_checkpoint_file(saved_checkpoint(tmp_path, sd), str(tmp_path / 'out.pth'))


def test_converting_a_file_onto_itself_is_refused_and_the_source_kept(tmp_path):
    path = saved_checkpoint(tmp_path, PVT('tiny').state_dict())
    before = (tmp_path / 'model.pth').read_bytes()
    with pytest.raises(ValueError, match=r'the output .*model\.pth is the checkpoint being '
                       'converted'):
        convert_checkpoint_file(path, path)
    assert (tmp_path / 'model.pth').read_bytes() == before
