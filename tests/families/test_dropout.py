"""``drop_rate`` and ``attn_drop_rate`` (beside ``drop_path_rate``), as in the authors', timm's and
mmdet's PVTs: dropout after the position embedding (v1), after each attention's projection and in
each feed-forward, and on the attention weights; inactive in eval mode."""
import pytest
import torch
from torch import nn

from mmpvt.families import build_encoder
from ..helpers import by_family


def dropouts(model):
    return [m.p for m in model.modules() if isinstance(m, nn.Dropout)]


@pytest.mark.parametrize(
    'arch,expected',
    [
        # per block: attention projection + feed-forward; v1 also one after each position embedding
        ('tiny', 4 + 8 * 2),
        ('b0', 8 * 2)
    ],
    ids=['PVT-tiny', 'PVTv2-b0'])
def test_drop_rate_places_dropout_where_the_authors_do(arch, expected):
    assert dropouts(build_encoder(arch, drop_rate=0.1)) == [0.1] * expected
    assert dropouts(build_encoder(arch)) == []  # default 0: no dropout module at all


@pytest.mark.parametrize('arch', by_family('tiny', 'b0'))
def test_attn_drop_rate_drops_attention_weights_in_training_only(arch):
    model = build_encoder(arch, attn_drop_rate=0.5, drop_path_rate=0.0)
    assert {b.attn.attn_drop for s in model.stages for b in s.blocks} == {0.5}
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        reference = build_encoder(arch, drop_path_rate=0.0)
        reference.load_state_dict(model.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(model(x), reference.eval()(x)))
        model.train()
        torch.manual_seed(1)
        first = model(x)
        torch.manual_seed(2)
        second = model(x)
    assert not torch.equal(first[-1], second[-1])


@pytest.mark.parametrize('arch', by_family('tiny', 'b0'))
def test_dropout_in_training_trains_and_is_the_identity_in_eval(arch):
    model = build_encoder(arch, drop_rate=0.2, drop_path_rate=0.0)
    plain = build_encoder(arch, drop_path_rate=0.0)
    plain.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    model.train()
    sum(o.sum() for o in model(x)).backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model.eval()(x), plain.eval()(x)))


@pytest.mark.parametrize('arg', ['drop_rate', 'attn_drop_rate'])
def test_a_rate_outside_0_1_is_refused_naming_the_argument(arg):
    with pytest.raises(ValueError, match=rf'PVTv2: {arg} must be in \[0, 1\), got 1.0'):
        build_encoder('b0', **{arg: 1.0})


def test_the_new_options_come_after_the_existing_positional_arguments():
    # PVTv2('b2', 3, (0, 1, 2, 3), 0.2) keeps meaning drop_path_rate=0.2
    model = build_encoder('b0', drop_path_rate=0.0)
    positional = type(model)('b0', 3, (0, 1, 2, 3), 0.2)
    assert positional.stages[-1].blocks[-1].drop_path.drop_prob == 0.2
    assert dropouts(positional) == []
