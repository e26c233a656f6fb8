"""Bad input to the tools is one line naming what was wrong and what was expected, and a non-zero
exit, before any work: sizes, batch sizes, repeat counts, score thresholds, inputs that are not
regular files (a FIFO would block a read forever) and empty input directories."""
import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from .helpers import fails_if_it_hangs, run_main

RETINA_DEMO = 'configs/demo/retinanet_pvt_t.py'


@pytest.fixture
def image(tmp_path):
    path = tmp_path / 'images' / 'a.png'
    path.parent.mkdir()
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    return path


@pytest.mark.parametrize('tool,args,message', [
    ('analysis/benchmark_backbone.py', ['--shapes', '0x0'],
     "argument --shapes: shape sides must be 32 to 4096 pixels, got '0x0'"),
    ('analysis/benchmark_backbone.py', ['--shapes', '20000x20000'],
     "argument --shapes: shape sides must be 32 to 4096 pixels, got '20000x20000'"),
    ('analysis/benchmark_backbone.py', ['--repeats', '0'
                                        ], 'argument --repeats: expected at least 1, got 0'),
    ('analysis/benchmark_deploy.py', ['--warmup', '-1'
                                      ], 'argument --warmup: expected at least 0, got -1'),
    ('analysis/benchmark_classification.py', ['--batch', '0'
                                              ], 'argument --batch: expected at least 1, got 0'),
    ('get_flops.py', ['tiny', '--shape', '20000', '20000'
                      ], '--shape sides must be 32 to 4096 pixels, got 20000 20000'),
], ids=lambda v: v if isinstance(v, str) and v.endswith('.py') else None)
def test_a_size_or_count_out_of_range_is_a_usage_error(tool, args, message):
    result = run_main(tool, args, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(f'error: {message}')


@pytest.mark.parametrize('tool,args,message', [
    ('image_demo.py', ['--batch-size', '0'], 'image_demo: batch_size must be at least 1, got 0'),
    ('image_demo.py', ['--score-thr', 'nan'], 'image_demo: score_thr must be in [0, 1], got nan'),
    ('image_demo.py', ['--max-megapixels', '0'
                       ], 'image_demo: max_megapixels must be positive, got 0.0'),
    ('deploy/onnx_infer.py', ['--score-thr', '2'], 'onnx_infer: --score-thr must be in [0, 1], '
     'got 2.0'),
    ('deploy/onnx_infer.py', ['--score-thr', 'nan'], 'onnx_infer: --score-thr must be in [0, 1], '
     'got nan'),
])
def test_a_score_threshold_or_batch_size_out_of_range_is_one_line(image, tool, args, message):
    model = RETINA_DEMO if tool == 'image_demo.py' else 'missing.onnx'  # never read
    result = run_main(tool, [str(image), model, *args], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [message]


@pytest.mark.slow  # draws the small image with a whole detector
def test_an_image_over_the_pixel_limit_is_skipped_with_its_size_and_the_others_drawn(image):
    big = image.parent / 'big.png'
    cv2.imwrite(str(big), np.zeros((2000, 3000, 3), np.uint8))  # 6 MP
    result = run_main('image_demo.py', [
        str(image.parent), RETINA_DEMO, '--out-dir',
        str(image.parent.parent / 'out'), '--max-megapixels', '5'
    ], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [
        f'image_demo: skipped {big}: 3000x2000 px (6.0 MP) is over --max-megapixels 5: drawing '
        'it at full size would take about 0.9 GiB of memory; downscale it, or raise '
        '--max-megapixels',  # 6e6 px x 160 bytes (DRAWING_BYTES_PER_PIXEL, measured) = 0.89 GiB
        'image_demo: 1 drawn, 1 skipped'
    ]
    assert sorted(p.name for p in (image.parent.parent / 'out' / 'vis').iterdir()) == ['a.png']


def png_header_only(path, width: int, height: int) -> None:
    """A PNG file whose header states `width` x `height` RGB pixels, followed by far too few."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack('>I', zlib.crc32(kind + data))
        return struct.pack('>I', len(data)) + kind + data + crc

    path.write_bytes(b'\x89PNG\r\n\x1a\n' +
                     chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)) +
                     chunk(b'IDAT', zlib.compress(b'\0' * 100)) + chunk(b'IEND', b''))


def webp_header_only(path, width: int, height: int) -> None:
    """A lossless WebP of 40x30 px whose header is rewritten to state `width` x `height` (at most
    16384 each: 14 bits of the VP8L header, after its 0x2f signature byte)."""
    lossless = [cv2.IMWRITE_WEBP_QUALITY, 101]
    ok, data = cv2.imencode('.webp', np.zeros((30, 40, 3), np.uint8), lossless)
    data = bytearray(data.tobytes())
    at = data.index(b'VP8L') + 9  # chunk name, size (4 bytes), signature byte
    rest = struct.unpack('<I', data[at:at + 4])[0] & ~((1 << 28) - 1)  # alpha and version bits
    data[at:at + 4] = struct.pack('<I', rest | (width - 1) | (height - 1) << 14)
    path.write_bytes(bytes(data))


# (name, file writer, side, GiB at 160 bytes per pixel: 20000^2 x 160 / 2^30 = 59.6, 16000^2: 38.1);
# the PNG's pixels are missing, so its size can only come from the header; PIL's WebP reader
# refuses 256 MP on its own unless its limit is lifted
@pytest.mark.slow  # image_demo imports mmdet's inferencer
@pytest.mark.parametrize('name,write,side,gib', [('huge.png', png_header_only, 20000, 59.6),
                                                 ('huge.webp', webp_header_only, 16000, 38.1)],
                         ids=['png', 'webp'])
def test_a_huge_image_is_refused_from_its_header_with_the_memory_it_would_need(
        tmp_path, name, write, side, gib):
    write(tmp_path / name, side, side)
    result = run_main('image_demo.py',
                      [str(tmp_path), RETINA_DEMO, '--out-dir',
                       str(tmp_path / 'out')], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [
        f'image_demo: skipped {tmp_path}/{name}: {side}x{side} px ({side * side / 1e6:.1f} MP) '
        f'is over --max-megapixels 40: drawing it at full size would take about {gib} GiB of '
        'memory; downscale it, or raise --max-megapixels', 'image_demo: 0 drawn, 1 skipped'
    ]


@pytest.mark.parametrize('option,message', [
    ('train_cfg.max_epochs=abc', "expected a number (the config has 6), got 'abc'"),
    ('train_dataloader.persistent_workers=yes',
     "expected True or False (the config has True), got 'yes'"),
])
def test_a_config_option_of_the_wrong_type_is_one_line_naming_the_key(tmp_path, option, message):
    result = run_main('train.py',
                      [RETINA_DEMO, '--work-dir',
                       str(tmp_path), '--cfg-options', option], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f'train: --cfg-options {option}: {message}']


def test_export_checks_where_it_writes_before_reading_the_model(tmp_path):
    (tmp_path / 'a_file').write_text('')
    out = tmp_path / 'a_file' / 'model.onnx'
    result = run_main('deploy/export_onnx.py', [RETINA_DEMO, 'README.md', str(out)], check=False)
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f'export_onnx: out {out}: {tmp_path / "a_file"} is a file, not a directory'
    ]


def test_onnx_infer_on_a_directory_without_images_is_one_line(tmp_path):
    result = run_main('deploy/onnx_infer.py', [str(tmp_path), 'missing.onnx'], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'onnx_infer: no image (.jpg, .jpeg, .png, .bmp) in directory {tmp_path}'
    ]


# with a time limit: a tool that opened the FIFO would wait for a writer forever
@pytest.mark.slow  # image_demo imports mmdet's inferencer
@pytest.mark.parametrize('tool', ['image_demo.py', 'deploy/onnx_infer.py'])
def test_a_fifo_given_as_the_input_is_one_line(tmp_path, tool):
    fifo = tmp_path / 'a.png'
    os.mkfifo(fifo)
    model = RETINA_DEMO if tool == 'image_demo.py' else 'missing.onnx'
    with fails_if_it_hangs(60):
        result = run_main(tool, [str(fifo), model], check=False)
    assert result.returncode == 1
    name = tool.split('/')[-1][:-3]
    assert result.stderr.splitlines()[-1] == (
        f'{name}: {fifo} is neither a regular file nor a directory (a FIFO, socket or device?)' +
        ('; give an image or a directory of images' if name == 'image_demo' else ''))


@pytest.mark.slow
def test_a_fifo_inside_an_input_directory_is_skipped_with_a_line(tmp_path):
    os.mkfifo(tmp_path / 'a.png')
    with fails_if_it_hangs(60):
        result = run_main('image_demo.py',
                          [str(tmp_path), RETINA_DEMO, '--out-dir',
                           str(tmp_path / 'out')], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [
        f'image_demo: skipped {tmp_path}/a.png: not a regular file (a FIFO, socket or device)',
        'image_demo: 0 drawn, 1 skipped'
    ]


@pytest.mark.parametrize('tool', ['image_demo.py', 'deploy/onnx_infer.py'])
def test_two_inputs_whose_outputs_would_share_a_name_are_one_line(tmp_path, tool):
    for name in ('a.png', 'a.jpg'):  # both would be written as preds/a.json
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    model = RETINA_DEMO if tool == 'image_demo.py' else 'missing.onnx'  # never read
    result = run_main(tool, [str(tmp_path), model, '--out-dir', str(tmp_path / 'out')], check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f'{tool.split("/")[-1][:-3]}: {tmp_path}/a.jpg and {tmp_path}/a.png would write their '
        'predictions under the same name (a); rename one of them or run them apart'
    ]
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_a_config_with_a_syntax_error_is_one_line_naming_it(tmp_path, tool):
    config = tmp_path / 'broken.py'
    config.write_text(f"_base_ = '{os.path.abspath(RETINA_DEMO)}'\nmodel = dict(\n")
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    args = [str(config)] + ([str(checkpoint)] if tool == 'test.py' else [])
    result = run_main(tool, args, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{tool[:-3]}: {config}: syntax error at line 2: '(' was never closed (in this config "
        'or a _base_ it inherits)'
    ]
