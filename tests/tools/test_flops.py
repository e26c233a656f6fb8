"""Specification of the FLOP counting protocols (mmpvt_tools.flops): the paper's rules (the
authors' get_flops.py: mmcv 1.x's counter plus the attention products) counted by hand on a small
module, and the paper's GFLOPs of Tables 10 and 11 reproduced from our configs."""
import os

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import nn

from mmpvt_tools.flops import backbone_complexity, config_complexity, count_flops
from ..helpers import REPO


class AllCountedOps(nn.Module):
    """One op of each kind the protocols treat differently, on a (1, 3, 4, 5) input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)  # with bias
        self.relu = nn.ReLU()
        self.norm = nn.LayerNorm(8)  # affine
        self.fc = nn.Linear(8, 16)  # with bias

    def forward(self, x):
        x = self.relu(self.conv(x))  # (1, 8, 4, 5)
        up = F.interpolate(x, scale_factor=2.0)  # (1, 8, 8, 10), nearest
        tokens = self.norm(x.flatten(2).transpose(1, 2))  # (1, 20, 8)
        y = F.gelu(self.fc(tokens))  # (1, 20, 16)
        gram = (y.transpose(1, 2) @ y).softmax(-1)  # (1, 16, 16)
        q = y.reshape(1, 20, 2, 8).transpose(1, 2)  # 2 heads of 8 channels
        att = F.scaled_dot_product_attention(q, q, q)
        return up.sum() + gram.sum() + att.sum()


# Hand counts (multiply-adds) of AllCountedOps
CONV = 20 * 3 * 3 * 3 * 8  # 20 output positions x k^2 Cin Cout
CONV_BIAS = 20 * 8
RELU = 8 * 20
LAYER_NORM = 20 * 8
LINEAR = 20 * 8 * 16  # without the bias
MATMUL = 16 * 20 * 16
NEAREST = 8 * 8 * 10  # fvcore: one per output element
ATTENTION = 2 * 20 * 20 * (8 + 8)  # heads x N x M x (d_qk + d_v), both protocols


def test_paper_protocol_counts_as_the_authors_mmcv_counter():
    # conv + its bias, ReLU, affine LN at 2 per element, linear without bias, attention;
    # not GELU, softmax, the other matrix product or the interpolation
    total = count_flops(AllCountedOps(), (torch.zeros(1, 3, 4, 5), ), 'paper').total()
    assert total == CONV + CONV_BIAS + RELU + 2 * LAYER_NORM + LINEAR + ATTENTION


def test_fvcore_protocol_counts_as_fvcore():
    # no bias, no ReLU, affine LN at 5 per element, every matrix product and the interpolation
    total = count_flops(AllCountedOps(), (torch.zeros(1, 3, 4, 5), ), 'fvcore').total()
    assert total == CONV + 5 * LAYER_NORM + LINEAR + MATMUL + NEAREST + ATTENTION


def test_an_unknown_protocol_is_refused_by_name():
    with pytest.raises(ValueError, match=r"protocol must be one of \('paper', 'fvcore'\), got "
                       r"'mmcv'"):
        count_flops(AllCountedOps(), (torch.zeros(1, 3, 4, 5), ), 'mmcv')


@pytest.mark.slow
def test_paper_protocol_runs_the_roi_heads_on_1000_proposals_and_100_masks():
    # mmdet 2.x forward_dummy: the box head on 1000 proposals, the mask head on the first 100.
    path = os.path.join(REPO, 'configs', 'demo', 'mask_rcnn_pvt_t.py')
    classes = Config.fromfile(path).model.roi_head.bbox_head.num_classes
    per_box = (
        256 * 7 * 7 * 1024 + 1024 * 1024  # shared fcs
        + 2 * 1024  # their ReLUs
        + 1024 * (classes + 1) + 1024 * 4 * classes)  # class scores, class-wise boxes
    convs = 4 * (14 * 14 * (9 * 256 * 256 + 256) + 14 * 14 * 256)  # 4 x (conv + bias, ReLU)
    upsample = 14 * 14 * 4 * 256 * 256 + 2 * 28 * 28 * 256  # deconv 2x2, bias, ReLU
    per_mask = convs + upsample + 28 * 28 * (256 * classes + classes)
    by_module = config_complexity(path, (256, 256))['module_flops']
    assert by_module['model.roi_head.bbox_head'] == 1000 * per_box
    assert by_module['model.roi_head.mask_head'] == 100 * per_mask


# The paper's GFLOPs: Table 11 (RetinaNet PVT-S: 157.2 for the 640 row, which is --shape 960 640,
# and 285.8 at the authors' default 1280 800) and Table 10 (Mask R-CNN PVT-S, 304.4).
@pytest.mark.slow
@pytest.mark.parametrize('config,shape,paper', [
    ('configs/retinanet/pvt_s_1x.py', (960, 640), 157.2),
    ('configs/retinanet/pvt_s_1x.py', (1280, 800), 285.8),
    ('configs/mask_rcnn/pvt_s_1x.py', (1280, 800), 304.4),
], ids=['retinanet-960x640', 'retinanet-1280x800', 'mask_rcnn-1280x800'])
def test_paper_gflops_are_reproduced(config, shape, paper):
    result = config_complexity(os.path.join(REPO, config), shape)
    assert abs(result['gflops'] - paper) <= 0.2, result['gflops']


@pytest.mark.slow
def test_a_decode_head_that_reads_the_data_samples_is_counted():
    # mmseg's tensor mode calls decode_head.forward(feats) only; its Mask2Former head also needs
    # the batch's data samples (the padded input size): backbone, then that head with them.
    path = os.path.join(REPO, 'configs', 'mask2former', 'pvt_v2_b2_160k_ade20k.py')
    result = config_complexity(path, (128, 128))
    by_module = result['module_flops']
    backbone = backbone_complexity('b2', (128, 128))['gflops']
    assert result['backbone_gflops'] == pytest.approx(backbone, rel=1e-12)
    assert by_module['model.decode_head'] > 0
    assert result['gflops'] * 1e9 == pytest.approx(
        by_module['model.backbone'] + by_module['model.decode_head'], rel=1e-12)
