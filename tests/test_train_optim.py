"""Adafactor against transformers' implementation; LR schedules against their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from t2t.train import Adafactor, TrainConfig, lr_multiplier
from t2t.train.config import ScheduleSection


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(6, 5, generator=g)),
        torch.nn.Parameter(torch.randn(2, 3, 4, generator=g)),
        torch.nn.Parameter(torch.randn(7, generator=g)),
    ]


@pytest.mark.parametrize(
    "options",
    [
        dict(lr=1e-3),  # T5 fine-tuning: constant LR, no momentum, factored, clipping 1.0
        dict(lr=1e-2, beta1=0.9, weight_decay=0.01),
        dict(lr=None, relative_step=True, scale_parameter=True),
    ],
)
def test_adafactor_matches_transformers(options):
    from transformers.optimization import Adafactor as HFAdafactor

    ours, theirs = _params(), _params()
    hf_options = {"scale_parameter": False, "relative_step": False, "warmup_init": False, **options}
    t2t_options = {k: v for k, v in options.items() if k != "lr"}
    opt_a = Adafactor(ours, lr=options["lr"] or 0.0, **t2t_options)
    opt_b = HFAdafactor(theirs, **hf_options)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=g) * 3
            a.grad, b.grad = grad.clone(), grad.clone()
        opt_a.step()
        opt_b.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert "exp_avg_sq_row" in opt_a.state[ours[0]] and "exp_avg_sq" in opt_a.state[ours[2]]


def test_adafactor_update_is_clipped_to_rms_one():
    (param,) = [torch.nn.Parameter(torch.zeros(4, 4))]
    opt = Adafactor([param], lr=1.0)
    param.grad = torch.randn(4, 4) * 1e6
    opt.step()
    rms = param.detach().square().mean().sqrt()
    assert float(rms) == pytest.approx(1.0, rel=1e-4)


def _lr(name: str, step: int, **fields) -> float:
    return lr_multiplier(ScheduleSection(name=name, **fields), max_steps=100)(step - 1)


def test_inverse_sqrt_is_t5s_schedule():
    # T5: lr = 1/sqrt(max(step, warmup)); with base lr 1/sqrt(warmup) and flat warmup it is exact
    warmup = 16
    for step in (1, 10, 16, 17, 64, 99):
        expected = 1 / math.sqrt(max(step, warmup))
        got = _lr("inverse_sqrt", step, warmup_steps=warmup, linear_warmup=False) / math.sqrt(warmup)
        assert got == pytest.approx(expected)
    # with the default linear warmup the first steps ramp up
    assert _lr("inverse_sqrt", 4, warmup_steps=16) == pytest.approx(4 / 16)


def test_cosine_and_linear_decay_to_the_floor():
    assert _lr("cosine", 10, warmup_steps=10) == pytest.approx(1.0)
    assert _lr("cosine", 55, warmup_steps=10) == pytest.approx(0.5)  # half way: cos(pi / 2) = 0
    assert _lr("cosine", 25, warmup_steps=10) == pytest.approx(0.5 * (1 + math.cos(math.pi / 6)))
    assert _lr("cosine", 100, warmup_steps=10, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert _lr("linear", 100) == pytest.approx(0.0)
    assert _lr("constant", 50) == 1.0
    assert _lr("constant", 5, warmup_steps=10) == pytest.approx(0.5)


def test_adamw_does_not_decay_norms_and_biases():
    import t2t
    from t2t.train import build_optimizer
    from t2t.train.config import OptimSection

    model = t2t.build_model(t2t.preset("gpt2-tiny"))
    opt = build_optimizer(model, OptimSection(weight_decay=0.1))
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])


def test_config_errors_name_the_key():
    from t2t.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown key optim.'lerning_rate'"):
        TrainConfig.from_dict({"optim": {"lerning_rate": 1e-3}})
    with pytest.raises(ConfigError, match=r"did you mean 'lr'"):
        TrainConfig().with_overrides(["optim.lrr=1e-3"])
    with pytest.raises(ConfigError, match=r"optim.name='adam' is not one of adamw, adafactor"):
        TrainConfig.from_dict({"optim": {"name": "adam"}})
    with pytest.raises(ConfigError, match=r"max_steps=0 is out of range"):
        TrainConfig(max_steps=0)
    with pytest.raises(ConfigError, match=r"grad_accum_steps='two' should be an integer"):
        TrainConfig.from_dict({"grad_accum_steps": "two"})
    with pytest.raises(ConfigError, match=r"scheduled_sampling.schedule='sigmoid'.*inverse_sigmoid"):
        TrainConfig().with_overrides(["scheduled_sampling.schedule=sigmoid"])
