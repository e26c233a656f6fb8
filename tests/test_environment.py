"""The installed stack: pinned versions and mmcv's compiled ops."""
from importlib.metadata import version

import pytest
import torch


def test_pinned_versions():
    assert version('torch').split('+')[0] == '2.14.1'
    assert version('torchvision').split('+')[0] == '0.29.1'
    assert version('mmengine') == '0.10.7'
    assert version('mmcv') == '2.1.0'
    assert version('mmdet') == '3.3.0'
    assert version('mmsegmentation') == '1.2.2'
    assert version('mmpretrain') == '1.2.0'
    assert version('numpy') == '1.26.4'


def test_mmcv_compiled_nms_runs():
    from mmcv.ops import nms
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert dets.shape == (2, 5)


def test_torchvision_compiled_nms_runs():
    # torchvision's ops library loads only beside the torch it was built for
    import torchvision
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_mmpretrain_models_import():
    from mmpretrain.models import ImageClassifier  # noqa: F401


def test_mmcv_compiled_roi_align_runs():
    from mmcv.ops import RoIAlign
    feats = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0, 0, 0, 4, 4]], dtype=torch.float32)
    out = RoIAlign(output_size=2, spatial_scale=1.0, sampling_ratio=1, aligned=False)(feats, rois)
    # each output bin averages one sample at its centre: (1,1)->5, (1,3)->7, (3,1)->13, (3,3)->15
    assert out.flatten().tolist() == [5.0, 7.0, 13.0, 15.0]


# ---- the set-up's fast path (tools/check_env.py) ----------------------------------------------
def run_check(fake_versions=None):
    """tools/check_env.py in this interpreter, with importlib.metadata.version faked for some
    packages (a drifted venv without breaking this one)."""
    import os
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ('import importlib.metadata as md, runpy, sys\n'
            f'fake = {dict(fake_versions or {})!r}\n'
            'real = md.version\n'
            'md.version = lambda name: fake.get(name) or real(name)\n'
            f'sys.argv = ["check_env.py", {repo!r}]\n'
            f'runpy.run_path({os.path.join(repo, "tools", "check_env.py")!r}, run_name="__main__")\n')
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)


@pytest.mark.slow  # tools/check_env.py in a subprocess: imports the whole stack
def test_setup_fast_path_accepts_this_environment():
    result = run_check()
    assert result.returncode == 0, result.stdout + result.stderr


def test_setup_fast_path_rejects_a_drifted_numpy_and_setuptools_82():
    result = run_check({'numpy': '2.1.0', 'setuptools': '82.0.1'})
    assert result.returncode == 1
    assert 'check_env: numpy 2.1.0 is installed, 1.26.4 is pinned' in result.stdout
    assert 'check_env: setuptools 82.0.1 is installed, < 82 is needed' in result.stdout


def test_setup_fast_path_rejects_a_drifted_openmmlab_pin():
    result = run_check({'mmdet': '3.2.0'})
    assert result.returncode == 1 and 'mmdet 3.2.0 is installed, 3.3.0 is pinned' in result.stdout
