"""Scheduled sampling: the schedules, which decoder inputs may be replaced, and the two-pass training step."""

from __future__ import annotations

import math

import pytest
import torch

from t2t.errors import ConfigError
from t2t.train import Trainer, read_metrics, sampling_probability
from t2t.train.config import ScheduledSamplingSection
from t2t.train.scheduled_sampling import mix_decoder_inputs
from test_train_support import ToyStream, config, tiny_model


def _p(step: int, **fields) -> float:
    return sampling_probability(ScheduledSamplingSection(**fields), step)


def test_schedules():
    assert _p(10, schedule="none") == 0.0
    assert _p(10, schedule="constant", max_prob=0.3) == 0.3
    assert _p(100, schedule="linear", slope=1e-3, max_prob=0.5) == pytest.approx(0.1)
    assert _p(10_000, schedule="linear", slope=1e-3, max_prob=0.5) == 0.5
    assert _p(50, schedule="exponential", k=0.99, max_prob=1.0) == pytest.approx(1 - 0.99**50)
    k = 100.0
    assert _p(300, schedule="inverse_sigmoid", k=k, max_prob=1.0) == pytest.approx(1 - k / (k + math.exp(3)))
    assert _p(10**9, schedule="inverse_sigmoid", k=k, max_prob=0.4) == pytest.approx(0.4)  # no overflow
    assert _p(5, schedule="constant", max_prob=0.3, start_step=10) == 0.0
    # the probability never decreases over training
    for schedule in ("linear", "exponential", "inverse_sigmoid"):
        k = 0.99 if schedule == "exponential" else 10.0
        values = [_p(s, schedule=schedule, k=k, max_prob=0.8, slope=0.01) for s in range(0, 400, 7)]
        assert values == sorted(values) and values[-1] <= 0.8


def test_mixing_replaces_only_real_positions_with_the_previous_prediction():
    gold = torch.tensor([[0, 11, 12, 13, 14], [0, 21, 22, 0, 0]])
    labels = torch.tensor([[11, 12, 13, 14, 1], [21, 22, 1, -100, -100]])
    predicted = torch.tensor([[51, 52, 53, 54, 55], [61, 62, 63, 64, 65]])
    g = torch.Generator().manual_seed(0)
    mixed, replaced, allowed = mix_decoder_inputs(gold, labels, predicted, 1.0, g)
    assert mixed.tolist() == [[0, 51, 52, 53, 54], [0, 61, 62, 0, 0]]
    assert (replaced, allowed) == (6, 6)
    same, replaced, _ = mix_decoder_inputs(gold, labels, predicted, 0.0, g)
    assert torch.equal(same, gold) and replaced == 0
    # packed rows: the first input of each segment stays the gold start token
    segments = torch.tensor([[1, 1, 2, 2, 2], [1, 1, 1, 0, 0]])
    mixed, _, allowed = mix_decoder_inputs(gold, labels, predicted, 1.0, g, segments)
    assert mixed[0].tolist() == [0, 51, 12, 53, 54] and allowed == 5


def test_training_logs_the_probability_and_replaced_share_every_step(tmp_path):
    """One `scheduled_sampling` record per step, whatever log_every says (train records every 3)."""
    cfg = config(
        tmp_path,
        max_steps=6,
        log_every=3,
        scheduled_sampling={"schedule": "linear", "slope": 0.1, "max_prob": 0.5},
    )
    Trainer(cfg, model=tiny_model(), train_stream=ToyStream(16)).fit()
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records if r["kind"] == "train"] == [3, 6]
    sampling = [r for r in records if r["kind"] == "scheduled_sampling"]
    assert [r["step"] for r in sampling] == [1, 2, 3, 4, 5, 6]
    # step n (1-based) is trained with p(n - 1): 0, 0.1, ..., 0.5 (capped)
    assert [r["ss_prob"] for r in sampling] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert sampling[0]["ss_replaced"] == 0.0  # p = 0: nothing replaced
    assert all(0.0 < r["ss_replaced"] < 2.5 * r["ss_prob"] for r in sampling[1:])
    assert abs(sampling[-1]["ss_replaced"] - 0.5) < 0.15
    from t2t.train.plot import plot_run

    assert plot_run(tmp_path / "run").read_bytes()[:4] == b"\x89PNG"  # with its p panel from these records


def test_scheduled_sampling_on_a_decoder_only_model_fails_before_training(tmp_path):
    model = tiny_model("gpt2-tiny")
    cfg = config(tmp_path, max_steps=2, scheduled_sampling={"schedule": "linear"})
    with pytest.raises(ConfigError, match=r"scheduled_sampling.schedule='linear' needs an encoder-decoder"):
        Trainer(cfg, model=model, train_stream=ToyStream(arch="decoder", vocab=model.config.vocab_size))
    assert not (tmp_path / "run").exists()  # nothing was started


def test_second_pass_trains_on_mixed_inputs(tmp_path):
    """With p = 1 every decoder input after the first is the model's own prediction, so the loss differs
    from teacher forcing; with p = 0 (schedule none) training is plain teacher forcing."""
    seen: list[torch.Tensor] = []
    model = tiny_model()
    model.decoder.register_forward_pre_hook(
        lambda m, args, kwargs: seen.append(args[0].detach()), with_kwargs=True
    )
    cfg = config(tmp_path, max_steps=1, scheduled_sampling={"schedule": "constant", "max_prob": 1.0})
    forced = Trainer(config(tmp_path / "tf", max_steps=1), model=tiny_model(), train_stream=ToyStream()).fit()
    sampled = Trainer(cfg, model=model, train_stream=ToyStream()).fit()
    assert len(seen) == 2  # pass 1 (gold, no grad) and pass 2 (mixed)
    assert not torch.equal(seen[0], seen[1])
    assert sampled.losses[0] != pytest.approx(forced.losses[0], abs=1e-6)
