"""Specification of checkpoint-file conversion (mmpvt.apis.convert.convert_checkpoint_file) and
of the tool that runs it (tools/convert_checkpoint.py). Whole detector/segmentor files are
converted in test_authors_checkpoints.py."""
import os

import pytest
import torch

from mmpvt.apis.convert import convert_checkpoint_file
from mmpvt.models import PVT, CheckpointMismatchError, identify

from ..helpers import (assert_holds_official_weights, by_family, load_pretrained,
                       official_weights, run_tool, saved_checkpoint)
from ..models.reference_layouts import in_layout

# The file each family is converted from: (layout, tensors the backbone keeps, dropped entries).
SOURCES = {'tiny': ('official', 156, ['pos_embed4[:, 0] (class-token position)', 'cls_token',
                                      'norm.weight', 'norm.bias', 'head.weight', 'head.bias']),
           'b0': ('transformers', 176, ['classifier.weight', 'classifier.bias'])}


@pytest.fixture(params=by_family('tiny', 'b0'))
def source(request, tmp_path):
    """(arch, path of a checkpoint of it in SOURCES' layout, its official weights)."""
    arch = request.param
    official = official_weights(arch)
    path = tmp_path / f'{arch}_{SOURCES[arch][0]}.pth'
    torch.save(in_layout(SOURCES[arch][0], official), path)
    return arch, path, official


def test_conversion_writes_the_backbone_in_mmpvt_layout(source, tmp_path):
    arch, src, official = source
    out = tmp_path / 'converted' / 'out.pth'
    os.makedirs(out.parent)
    layout, num_tensors, dropped = SOURCES[arch]
    family = 'PVT' if arch == 'tiny' else 'PVTv2'
    assert convert_checkpoint_file(str(src), str(out)) == dict(
        family=family, layout=layout, arch=arch, num_tensors=num_tensors, dropped=dropped,
        whole_model=False, other_tensors=0, renamed_detr=0)
    saved = torch.load(out, weights_only=True)
    assert identify(saved['state_dict']) == (family, 'mmpvt')
    assert {k: saved['meta'][k] for k in ('family', 'source_layout', 'arch')} == dict(
        family=family, source_layout=layout, arch=arch)
    assert_holds_official_weights(load_pretrained(out, arch), official)
    assert os.listdir(out.parent) == ['out.pth']  # no temporary left behind


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
    with pytest.raises(CheckpointMismatchError, match=r'is a PVTv2 checkpoint \(official layout\) '
                                                      r'but --arch tiny is not a PVTv2 arch'):
        convert_checkpoint_file(str(tmp_path / 'b0.pth'), str(tmp_path / 'out.pth'), arch='tiny')
    assert not (tmp_path / 'out.pth').exists()


# ---- the tool ----------------------------------------------------------------------------------
@pytest.mark.slow  # runs the tool in a subprocess
def test_convert_tool_says_what_it_converted(source, tmp_path):
    arch, src, _ = source
    layout, num_tensors, dropped = SOURCES[arch]
    family = 'PVT' if arch == 'tiny' else 'PVTv2'
    out = tmp_path / 'out.pth'
    result = run_tool(['tools/convert_checkpoint.py', str(src), str(out)])
    assert result.stdout.splitlines()[-2:] == [  # (after mmengine's own "Loads checkpoint" line)
        f'converted {src} ({family}, {layout} layout, arch {arch}, {num_tensors} tensors) -> {out}',
        'dropped classification-only entries: ' + ', '.join(dropped)]


@pytest.mark.slow  # runs the tool in a subprocess
def test_convert_tool_prints_one_line_for_an_unreadable_file(tmp_path):
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    result = run_tool(['tools/convert_checkpoint.py', str(tmp_path / 'text.pth'),
                       str(tmp_path / 'out.pth')], check=False)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.startswith('convert_checkpoint: Could not read the checkpoint')
    assert not (tmp_path / 'out.pth').exists()


def test_a_state_dict_entry_that_is_not_a_tensor_is_named(tmp_path):
    sd = PVT('tiny').state_dict()
    sd['stages.0.patch_embed.proj.weight'] = 'a string'
    with pytest.raises(ValueError, match=r"the state dict entry 'stages\.0\.patch_embed\.proj\."
                                         r"weight' holds a str \('a string'\), expected a tensor"):
        convert_checkpoint_file(saved_checkpoint(tmp_path, sd), str(tmp_path / 'out.pth'))


def test_converting_a_file_onto_itself_is_refused_and_the_source_kept(tmp_path):
    path = saved_checkpoint(tmp_path, PVT('tiny').state_dict())
    before = (tmp_path / 'model.pth').read_bytes()
    with pytest.raises(ValueError, match=r'the output .*model\.pth is the checkpoint being '
                                         'converted'):
        convert_checkpoint_file(path, path)
    assert (tmp_path / 'model.pth').read_bytes() == before
