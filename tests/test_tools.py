"""tools/: testing, resume, FLOPs, use from another project (distributed runs:
tests/engine/test_distributed_runs.py).

The tools run as their ``main(argv)`` in this process (helpers.run_main) unless the
process is the behaviour: a distributed launch, a run killed mid-write, a fresh interpreter
importing mmpvt through a config, and each tool once as a script (exit status of ``sys.exit``)."""
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from mmpvt.apis import find_resume_checkpoint
from mmpvt_tools.flops import backbone_complexity
from .helpers import REPO, data_env, poison_hub_cache, random_weights, run_command, run_main

pytestmark = pytest.mark.slow  # whole models, training or subprocesses: not in test-fast

RETINA_DEMO = 'configs/demo/retinanet_pvt_t.py'
FPN_DEMO = 'configs/demo/sem_fpn_pvt_t.py'
CLS_DEMO = 'configs/demo/cls_pvt_v2_b0.py'


def test_segmentation_train_and_test_with_tta(tiny_shapes, tmp_path):
    common = [
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False'
    ]
    run_main('train.py', [
        FPN_DEMO, '--work-dir',
        str(tmp_path), '--cfg-options', 'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
        'train_dataloader.batch_size=2', *common
    ], env=data_env(tiny_shapes))
    checkpoint = tmp_path / 'iter_1.pth'
    out = run_main('test.py', [
        FPN_DEMO,
        str(checkpoint), '--tta', '--out',
        str(tmp_path / 'masks'), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ], env=data_env(tiny_shapes))
    assert "'mIoU': " in out.stdout  # the metrics printed (the logged config names 'mIoU' too)
    assert len(list((tmp_path / 'masks').rglob('*.png'))) == 4


# tools/train.py with the atomic backend's put() made to stall half-way through writing one file:
# if anything else wrote the checkpoints, the stall would never happen.
STALLING_TRAIN = """
import os, runpy, sys, time
import mmpvt.fileio as fileio
original_put = fileio.AtomicLocalBackend.put
def put(self, obj, filepath):
    if str(filepath).endswith(os.environ['STALL_ON']):
        with fileio.atomic_path(str(filepath)) as tmp, open(tmp, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            print('STALLED WRITING', filepath, flush=True)
            time.sleep(600)
    return original_put(self, obj, filepath)
fileio.AtomicLocalBackend.put = put
sys.argv = ['tools/train.py'] + sys.argv[1:]
runpy.run_path('tools/train.py', run_name='__main__')
"""


def test_run_killed_while_writing_a_checkpoint_resumes_to_the_same_length(tiny_shapes, tmp_path):
    # a checkpoint each iteration; the run is killed writing the second, resumed from the first
    options = [
        '--work-dir',
        str(tmp_path), '--cfg-options', 'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
        'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.max_keep_ckpts=10',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False'
    ]
    env = dict(os.environ, PYTHONUNBUFFERED='1', STALL_ON='iter_2.pth', **data_env(tiny_shapes))
    proc = subprocess.Popen([sys.executable, '-c', STALLING_TRAIN, FPN_DEMO, *options], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    for line in proc.stdout:
        if line.startswith('STALLED WRITING'):
            break
        assert time.time() < deadline, 'the run never wrote iter_2.pth through the atomic backend'
    else:
        raise AssertionError(f'training ended (code {proc.wait()}) without the atomic backend '
                             'writing iter_2.pth')
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / 'iter_1.pth').exists() and not (tmp_path / 'iter_2.pth').exists()
    assert len(list(tmp_path.glob('.iter_2.pth.*.tmp'))) == 1  # the half-written bytes are hidden

    out = run_main('train.py', [FPN_DEMO, '--resume', *options], env=data_env(tiny_shapes))
    assert 'resumed' in (out.stdout + out.stderr).lower()
    assert torch.load(tmp_path / 'iter_3.pth')['meta']['iter'] == 3
    assert not list(tmp_path.glob('.*.tmp'))  # the killed writer's temporary went with iter_2


def test_resume_falls_back_to_newest_complete_checkpoint(tmp_path, log_lines):
    for name in ('iter_2.pth', 'iter_10.pth', '.iter_12.pth.abc.tmp'):
        torch.save({'meta': {'name': name}}, tmp_path / name)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_12.pth'))  # never completed
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_10.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')


def test_resume_skips_a_truncated_newest_checkpoint_naming_it(tmp_path, log_lines):
    for name in ('iter_2.pth', 'iter_4.pth'):
        torch.save({'meta': {'name': name}}, tmp_path / name)
    data = (tmp_path / 'iter_4.pth').read_bytes()
    (tmp_path / 'iter_4.pth').write_bytes(data[:len(data) // 2])  # a killed copy
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    assert [line for line in log_lines if 'skipping' in line] == [
        f'--resume: skipping {tmp_path / "iter_4.pth"}: incomplete or not a PyTorch checkpoint '
        '(File is not a zip file)'
    ]
    (tmp_path / 'iter_2.pth').write_bytes(b'')  # nothing complete: start from scratch
    assert find_resume_checkpoint(str(tmp_path)) is None


@pytest.mark.parametrize('arch,paper', [('tiny', 1.9), ('small', 3.8), ('medium', 6.7),
                                        ('large', 9.8)])
def test_backbone_gflops_at_224_match_paper_table2(arch, paper):
    assert round(backbone_complexity(arch)['gflops'], 1) == paper


@pytest.mark.slow
@pytest.mark.parametrize('variant,paper', [('t', 1.9), ('s', 3.8), ('m', 6.7), ('l', 9.8)])
def test_imagenet_classifier_gflops_at_224_match_paper_table2(variant, paper):
    # Table 2 counts the ImageNet classifiers, to one decimal: the class token (one more token
    # in the last stage) and the head add 0.01 GFLOPs to the backbone's count. PVT-L's 9.851 is
    # the paper's 9.8 cut, not rounded, so within 0.06 rather than equal after rounding
    from mmpvt_tools.flops import config_complexity
    r = config_complexity(f'{REPO}/configs/imagenet/pvt_{variant}_300e.py')
    assert r['shape'] == (224, 224) and abs(r['gflops'] - paper) < 0.06


def test_pvt_v2_b2_gflops_at_224_match_the_authors_get_flops():
    # tests/data/pvt_v2_facts.md Sec. 6: get_flops.py pvt_v2_b2 -> 4.04 GFLOPs (attention included)
    assert round(backbone_complexity('b2')['gflops'], 1) == 4.0


def test_get_flops_cli_takes_pvt_v2_arch_names():
    # the script as a file (its own process); the other get_flops tests call its main
    out = run_command(['tools/get_flops.py', 'b0']).stdout
    assert 'PVTv2-b0 at 224x224: 3.41M params' in out  # facts file: 3.41M without the head


def test_get_flops_cli_applies_cfg_options_to_a_config_and_refuses_them_for_an_arch():
    out = run_main('get_flops.py', [
        'configs/trans2seg/pvt_s_40k.py', '--shape', '64', '64', '--cfg-options',
        'model.decode_head.prune_unused=False'
    ]).stdout
    assert 'at 64x64: 32.66M params' in out  # with the original's unused parts (hand count)
    refused = run_main('get_flops.py', ['tiny', '--cfg-options', 'a=1'], check=False)
    assert refused.returncode == 2 and '--cfg-options needs a config file' in refused.stderr


def test_get_flops_cli_counts_attention():
    out = run_main('get_flops.py', ['tiny', '--protocol', 'fvcore']).stdout
    assert 'PVT-tiny at 224x224: 12.71M params, 1.94 GFLOPs' in out
    # without the attention handler the count would be lower
    from mmengine.analysis import FlopAnalyzer

    from mmpvt.models import PVT
    plain = FlopAnalyzer(PVT('tiny').eval(), (torch.zeros(1, 3, 224, 224), ))
    plain.unsupported_ops_warnings(False)
    assert plain.total() / 1e9 < 1.9


USER_DET = """
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']
custom_imports = dict(imports=['mmpvt'])
model = dict(backbone=dict(_delete_=True, type='mmpvt.PVT', arch='tiny'),
             neck=dict(in_channels=[64, 128, 320, 512]))
"""
USER_SEG = """
_base_ = ['mmseg::_base_/models/fpn_r50.py']
custom_imports = dict(imports=['mmpvt'])
model = dict(pretrained=None, backbone=dict(_delete_=True, type='mmpvt.PVT', arch='tiny'),
             neck=dict(in_channels=[64, 128, 320, 512]))
"""
BUILD = """
import sys
from mmengine.config import Config
from mmengine.registry import init_default_scope
assert 'mmpvt' not in sys.modules
cfg = Config.fromfile(sys.argv[1])  # performs custom_imports
assert 'mmpvt' in sys.modules
scope = sys.argv[2]
init_default_scope(scope)
MODELS = __import__(scope + '.registry', fromlist=['MODELS']).MODELS
model = MODELS.build(cfg.model)
print(type(model).__name__, type(model.backbone).__module__, type(model.backbone).__name__)
"""


@pytest.mark.parametrize('text,scope,expected', [
    (USER_DET, 'mmdet', 'RetinaNet mmpvt.models.backbones PVT'),
    (USER_SEG, 'mmseg', 'EncoderDecoder mmpvt.models.backbones PVT'),
])
def test_config_of_another_project_builds_with_mmpvt_backbone(tmp_path, text, scope, expected):
    (tmp_path / 'my_config.py').write_text(text)
    (tmp_path / 'build.py').write_text(BUILD)
    result = subprocess.run([sys.executable, 'build.py', 'my_config.py', scope], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == expected


def test_image_demo_cli_draws_a_directory_and_skips_what_is_no_image(tiny_shapes, tmp_path):
    import shutil
    images = tmp_path / 'images'
    shutil.copytree(tiny_shapes / 'images' / 'validation', images)
    names = sorted(p.name for p in images.glob('*.png'))
    (images / 'notes.png').write_text('not an image')
    (images / 'cut.png').write_bytes((images / names[0]).read_bytes()[:40])  # a truncated PNG
    weights = random_weights(RETINA_DEMO, tmp_path / 'random.pth')
    out = run_main('image_demo.py', [
        str(images), RETINA_DEMO, '--weights',
        str(weights), '--out-dir',
        str(tmp_path / 'out'), '--score-thr', '0.0'
    ], env=data_env(tiny_shapes), check=False)
    assert out.returncode == 1
    assert out.stdout.splitlines()[-4:] == [f'drawn: {tmp_path / "out" / "vis" / n}' for n in names]
    assert out.stderr.strip().splitlines()[-3:] == [
        f'image_demo: skipped {images / "cut.png"}: cannot be decoded as an image',
        f'image_demo: skipped {images / "notes.png"}: cannot be decoded as an image',
        'image_demo: 4 drawn, 2 skipped'
    ]
    assert sorted(p.name for p in (tmp_path / 'out' / 'preds').glob('*.json')) == [
        n.replace('.png', '.json') for n in names
    ]


@pytest.mark.slow  # the tool in its own process (a file size limit of its own)
def test_image_demo_that_cannot_write_leaves_the_previous_outputs_whole(tiny_shapes, tmp_path):
    # RLIMIT_FSIZE: a write past 256 KiB fails with EFBIG, as on a full disk (mmengine's own
    # temporary config files are smaller); the inferencer writes the drawing, of a noise image
    # that PNG cannot compress, with a plain write
    image = tmp_path / 'noise.png'
    cv2.imwrite(str(image), np.random.RandomState(0).randint(0, 256, (512, 512, 3), np.uint8))
    out_dir = tmp_path / 'out'
    previous = {
        out_dir / 'vis' / image.name: b'previous drawing',
        out_dir / 'preds' / f'{image.stem}.json': b'{"previous": "run"}'
    }
    for path, data in previous.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    argv = [
        f'{REPO}/tools/image_demo.py',
        str(image), RETINA_DEMO, '--out-dir',
        str(out_dir), '--score-thr', '0.0'
    ]
    code = ('import resource, runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); '
            'resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 18, 1 << 18)); '
            f'sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name="__main__")')
    result = run_command([sys.executable, '-c', code], env=data_env(tiny_shapes), check=False)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1
    assert last.startswith(f'image_demo: could not write into {out_dir} (File too large, ')
    assert last.endswith('MiB free there); the files there before are left as they were')
    assert {p: p.read_bytes() for p in out_dir.rglob('*') if p.is_file()} == previous
    assert [p.name for p in out_dir.iterdir() if p.name.startswith('.')] == []  # no staging


def test_image_demo_refuses_weights_of_another_model(tiny_shapes, tmp_path):
    weights = random_weights(FPN_DEMO, tmp_path / 'fpn.pth')
    image = next((tiny_shapes / 'images' / 'validation').glob('*.png'))
    out = run_main(
        'image_demo.py',
        [str(image), RETINA_DEMO, '--weights',
         str(weights), '--out-dir',
         str(tmp_path / 'out')], env=data_env(tiny_shapes), check=False)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f'image_demo: The checkpoint {weights} does not fit this RetinaNet: ')
    assert 'decode_head' in last


def test_image_demo_refuses_a_detectors_weights_for_a_classifier(tiny_shapes, tmp_path):
    weights = random_weights(RETINA_DEMO, tmp_path / 'retina.pth')
    crop = next((tiny_shapes / 'crops' / 'validation').glob('*.png'))
    out = run_main(
        'image_demo.py',
        [str(crop), CLS_DEMO, '--weights',
         str(weights), '--out-dir',
         str(tmp_path / 'out')], env=data_env(tiny_shapes), check=False)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    # a PVT-T RetinaNet's backbone for the classifier's PVTv2-B0: refused before any drawing
    assert last.startswith('image_demo: ') and 'cannot be loaded into PVTv2' in last
    assert not (tmp_path / 'out' / 'vis').exists()


@pytest.mark.parametrize('args,message', [
    (['missing.png', RETINA_DEMO], 'image or directory not found: missing.png'),
    (['README.md', RETINA_DEMO, '--weights', 'nope.pth'], 'checkpoint not found: nope.pth'),
    (['README.md', RETINA_DEMO, '--weights', 'docs/benchmark_cpu_pvt_s.json'
      ], 'Could not read the checkpoint docs/benchmark_cpu_pvt_s.json: UnpicklingError'),
    (['README.md', RETINA_DEMO, '--device', 'cuda:99'], 'CUDA is not available'),
    (['README.md', RETINA_DEMO, '--device', 'gpu'
      ], "--device must be cpu, cuda or cuda:N, got 'gpu'"),
    (['README.md', RETINA_DEMO, '--device', 'cuda:x'], "--device must be cpu, cuda or cuda:N, "
     "got 'cuda:x'"),
    (['README.md', RETINA_DEMO, '--out-dir', 'README.md'], 'cannot write into the output '
     'directory README.md'),
    (['README.md', 'configs/demo/cls_pvt_v2_b0.py', '--topk', '0'], 'topk must be at least 1'),
])
def test_image_demo_cli_bad_input_is_one_clear_line(args, message):
    out = run_main('image_demo.py', args, check=False)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith('image_demo: ')
    assert message in out.stderr


def test_image_demo_script_exits_with_the_status_of_its_main():
    # the script as a file (its own process); the other image_demo tests call its main
    out = run_command(['tools/image_demo.py', 'missing.png', RETINA_DEMO], check=False)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == \
        'image_demo: image or directory not found: missing.png'


def test_tools_test_refuses_weights_of_another_model(tiny_shapes, tmp_path):
    weights = random_weights(FPN_DEMO, tmp_path / 'fpn.pth')
    out = run_main('test.py', [RETINA_DEMO, str(weights), '--work-dir',
                               str(tmp_path)], env=data_env(tiny_shapes), check=False)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith(f'test: The checkpoint {weights} does not fit this RetinaNet: ')
    assert "'coco/bbox_mAP'" not in out.stdout


def test_tools_test_refuses_a_url_checkpoint_that_would_run_code(tiny_shapes, tmp_path):
    marker = poison_hub_cache(tmp_path)
    out = run_main(
        'test.py',
        [RETINA_DEMO, 'https://example.invalid/evil.pth', '--work-dir',
         str(tmp_path / 'work')], env=dict(data_env(tiny_shapes),
                                           TORCH_HOME=str(tmp_path)), check=False)
    assert out.returncode != 0 and not marker.exists()
    assert 'Refused to load the checkpoint https://example.invalid/evil.pth' in out.stderr
