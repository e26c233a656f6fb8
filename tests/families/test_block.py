"""The encoder layer: pre-norm residual form, and q/kv without bias on request."""
import torch

from mmpvt.families.common import FeedForward, PVTBlock


def test_block_without_qkv_bias_has_bias_only_in_the_output_projection():
    block = PVTBlock(32, 4, sr_ratio=1, mlp=FeedForward(32, 64), qkv_bias=False)
    assert block.attn.q.bias is None and block.attn.kv.bias is None
    assert block.attn.proj.bias is not None
    # 3 C^2 (q, kv) + C^2 + C (proj) + 2 (C * 2C) + 2C + C (FFN) + 2 x 2C (norms)
    C = 32
    assert sum(p.numel() for p in block.parameters()) == 4 * C * C + C + 4 * C * C + 3 * C + 4 * C


def test_block_is_x_plus_attention_then_plus_feed_forward():
    torch.manual_seed(0)
    block = PVTBlock(16, 2, sr_ratio=2, mlp=FeedForward(16, 64)).eval()
    x = torch.randn(2, 6 * 4, 16)
    with torch.no_grad():
        y = x + block.attn(block.norm1(x), (6, 4))
        expected = y + block.mlp(block.norm2(y), (6, 4))
        assert torch.allclose(block(x, (6, 4)), expected, atol=1e-6)
