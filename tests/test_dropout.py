import pytest
import torch

from t2t.model.dropout import Dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drop_rate_and_expectation_are_exact(p):
    keep, scale = keep_mask(torch.Size([2_000_000]), p, torch.device("cpu"))
    rate = 1 - keep.float().mean().item()
    assert abs(rate - p) < 0.002  # 2M draws: the standard error is below 0.0004
    effective = round(p * 65536) / 65536
    assert scale == pytest.approx(1 / (1 - effective))


def test_gradient_flows_through_kept_elements_only():
    x = torch.randn(64, 33, requires_grad=True)  # 2112 elements: not a multiple of three lanes
    y = dropout(x, 0.25, training=True)
    y.sum().backward()
    kept = y != 0
    assert torch.equal(kept, x.grad != 0)
    assert torch.allclose(y[kept], x[kept] * x.grad[kept])


def test_seeded_runs_repeat_and_eval_is_identity():
    layer = Dropout(0.2)
    x = torch.randn(10, 10)
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    assert torch.equal(a, layer(x))
    layer.eval()
    assert layer(x) is x
