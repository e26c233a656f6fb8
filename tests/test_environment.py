"""The installed stack: pinned versions and mmcv's compiled ops."""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version

import pytest
import torch

from mmpvt_tools.preflight import REBUILD

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STACKS = os.path.join(REPO, 'requirements', 'stacks')


def read_pins(stack):
    with open(os.path.join(STACKS, f'{stack}.txt')) as f:
        return dict(re.findall(r'^([\w.-]+)==(\S+)', f.read(), re.M))


def installed_stack():
    """The stack of requirements/stacks/ whose torch pin is the installed torch."""
    torch_version = version('torch').split('+')[0]
    stacks = [name[:-4] for name in os.listdir(STACKS) if name.endswith('.txt')]
    found = [s for s in stacks if read_pins(s)['torch'] == torch_version]
    assert len(found) == 1, f'torch {torch_version} is the torch of {found}'
    return found[0]


def test_every_pin_of_the_installed_stack_is_installed():
    pins = read_pins(installed_stack())
    assert {
        'torch', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmsegmentation', 'mmpretrain', 'numpy'
    } <= set(pins)
    assert {name: version(name).split('+')[0] for name in pins} == pins


@pytest.mark.parametrize('stack', ['latest', 'oldest'])
def test_the_declared_ranges_admit_every_tested_stack(stack):
    # mmpvt installs next to either stack without changing it (the pip --dry-run check of
    # docs/install.md shows it for the installed one)
    from packaging.requirements import Requirement
    requirements = []
    for name in ('runtime', 'det', 'seg', 'cls', 'hub'):
        with open(os.path.join(REPO, 'requirements', f'{name}.txt')) as f:
            requirements += [
                Requirement(line.split('#')[0].strip()) for line in f if line.split('#')[0].strip()
            ]
    pins = read_pins(stack)
    ranged = [req for req in requirements if req.specifier]
    assert {req.name for req in ranged} <= set(pins), 'a declared range no stack tests'
    outside = [
        f'{req} excludes {pins[req.name]}' for req in ranged
        if not req.specifier.contains(pins[req.name])
    ]
    assert outside == []


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
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ('import importlib.metadata as md, runpy, sys\n'
            f'fake = {dict(fake_versions or {})!r}\n'
            'real = md.version\n'
            'md.version = lambda name: fake.get(name) or real(name)\n'
            f'sys.argv = ["check_env.py", "--stack", {installed_stack()!r}, {repo!r}]\n'
            f'runpy.run_path({os.path.join(repo, "tools", "check_env.py")!r}, '
            'run_name="__main__")\n')
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


@pytest.mark.slow  # pip resolves the whole environment (about 10 s)
def test_installing_mmpvt_into_this_environment_would_install_only_mmpvt(tmp_path):
    # what a user runs in an OpenMMLab environment of their own: with supported versions
    # installed, pip's resolver (offline here) changes nothing but mmpvt
    report = tmp_path / 'report.json'
    result = subprocess.run([
        sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index', '--no-build-isolation',
        '--disable-pip-version-check', '--report',
        str(report), '-e', f'{REPO}[all]'
    ], capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    with open(report) as f:
        installs = [item['metadata']['name'] for item in json.load(f)['install']]
    assert installs == ['mmpvt']


def load_check_env():
    spec = importlib.util.spec_from_file_location('_mmpvt_check_env',
                                                  os.path.join(REPO, 'tools', 'check_env.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_gpu_node_whose_mmcv_ops_do_not_run_on_cuda_is_told_to_rebuild(monkeypatch):
    # torch sees a GPU (faked), but no CUDA kernel can run here: exactly what a CPU-built mmcv
    # gives on a GPU node ("implementation for device cuda:0 not found")
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    lines = load_check_env().cuda_op_problems()
    assert [line.split(' does not run on CUDA')[0] for line in lines
            ] == ['mmcv.ops.nms', 'mmcv.ops.RoIAlign', 'mmcv.ops.sigmoid_focal_loss']
    assert all('rebuild mmcv with CUDA ops' in line for line in lines)


def test_on_this_machine_the_cuda_op_checks_find_nothing_wrong():
    # no GPU: not run; a GPU node with a CUDA-built mmcv: they pass
    assert load_check_env().cuda_op_problems() == []


@pytest.mark.slow  # imports the whole stack in check_env's problems()
def test_asking_for_cuda_ops_finds_that_this_mmcv_was_built_for_the_cpu():
    check_env = load_check_env()
    assert check_env.mmcv_cuda_version() == 'not available'  # built by make install, no GPU
    problems = check_env.problems(REPO, installed_stack(), 'cuda')
    assert problems == ['mmcv was compiled without CUDA ops; ' + REBUILD]


def run_setup(tmp_path, **env):
    """tools/setup_env.sh for the latest stack into a venv under `tmp_path` that does not exist."""
    env = dict(os.environ, MMPVT_STACK='latest', MMPVT_VENV=str(tmp_path / 'new' / 'venv'), **env)
    return subprocess.run(['bash', os.path.join(REPO, 'tools', 'setup_env.sh')], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_setup_says_how_much_disk_it_needs_before_it_installs_anything(tmp_path):
    result = run_setup(tmp_path, MMPVT_MIN_FREE_GB='100000000')  # 100 PB: more than any disk
    free_gb = shutil.disk_usage(tmp_path).free // 2**30
    (line, ) = result.stderr.splitlines()
    said = re.fullmatch(
        r"\[setup_env\] ERROR: the latest stack needs about 100000000 GB free, (\S+) \(for the "
        r"venv (\S+)\) has (\d+) GB\. Free some space, point MMPVT_VENV / MMPVT_WHEEL_CACHE / "
        r"TMPDIR elsewhere, or set MMPVT_MIN_FREE_GB", line)
    assert result.returncode == 1 and said, line
    assert said.group(1, 2) == (str(tmp_path), str(tmp_path / 'new' / 'venv'))
    assert abs(int(said.group(3)) - free_gb) <= 1  # other processes write to the disk meanwhile
    assert not (tmp_path / 'new').exists()


def test_setup_refuses_a_disk_requirement_that_is_not_a_number(tmp_path):
    result = run_setup(tmp_path, MMPVT_MIN_FREE_GB='10GB')
    assert result.returncode == 1 and result.stderr.splitlines() == [
        "[setup_env] ERROR: MMPVT_MIN_FREE_GB must be a whole number of GB, got '10GB'"
    ]
