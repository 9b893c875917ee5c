"""Sequence-level training (t2t.train.rl) through the one Trainer: the reward of the model's own samples
rises on a toy task whose optimum is known, the per-example rewards and baselines are what they say, and
the settings are checked when the config is built."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from generation_helpers import tiny_model_for, train_tokenizer
from t2t.errors import ConfigError
from t2t.finetune.collate import collate
from t2t.train import TrainConfig, Trainer, read_metrics
from t2t.train.feature_stream import FeatureStream
from t2t.train.rl import _up_to_eos, reward_function


def short_answers(predictions: list[str], references: list[str]) -> list[float]:
    """The toy reward: 1 for an empty answer, less the longer it is. Its optimum, ending at once, is
    one token away from any model, so a working policy gradient finds it in a few dozen steps."""
    return [1.0 / (1.0 + len(p.split())) for p in predictions]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(tmp_path_factory.mktemp("rl"), "sentencepiece", 300)


def _stream(tokenizer, rows: int = 64) -> FeatureStream:
    texts = [f"the king went up to the city {i}" for i in range(rows)]
    features = [{"input_ids": tokenizer.encode(t), "labels": tokenizer.encode(t.split()[1])} for t in texts]
    return FeatureStream(features, 8, partial(collate, pad_id=tokenizer.pad_id), 0)


def _rewards(tokenizer, tmp_path, rl: dict, lr: float, steps: int = 40) -> list[dict]:
    model = tiny_model_for(tokenizer, "encoder-decoder", seed=3)
    cfg = TrainConfig.from_dict(
        {
            "run_dir": str(tmp_path / "run"),
            "max_steps": steps,
            "progress": False,
            "tensorboard": False,
            "log_every": 1,
            "optim": {"name": "adamw", "lr": lr},
            "rl": {"reward": "test_train_rl:short_answers", "max_new_tokens": 12, **rl},
        }
    )
    Trainer(cfg, model=model, tokenizer=tokenizer, train_stream=_stream(tokenizer)).fit()
    records = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "rl"]
    assert [r["step"] for r in records] == list(range(1, steps + 1))
    return records


def _mean(records: list[dict], key: str) -> float:
    return sum(r[key] for r in records) / len(records)


def test_the_reward_of_the_samples_rises_to_the_known_optimum(tokenizer, tmp_path):
    records = _rewards(tokenizer, tmp_path, {"method": "mrt", "samples": 4}, lr=1e-2)
    first, last = _mean(records[:8], "reward"), _mean(records[-8:], "reward")
    assert first < 0.5 and last > 0.85, (first, last)  # the optimum is 1: end at once
    assert _mean(records[-8:], "sample_length") < _mean(records[:8], "sample_length")


def test_self_critical_training_raises_the_reward_too(tokenizer, tmp_path):
    """SCST learns more slowly here: where the sample equals the greedy answer it has no signal."""
    records = _rewards(tokenizer, tmp_path, {"method": "scst"}, lr=1e-2)
    first, last = _mean(records[:8], "reward"), _mean(records[-8:], "reward")
    assert last > first + 0.05, (first, last)
    assert all(r["baseline"] > 0 for r in records)  # the greedy answer's reward


def test_mrt_with_a_kl_penalty_runs_and_logs_it(tokenizer, tmp_path):
    model = tiny_model_for(tokenizer, "encoder-decoder", seed=4)
    cfg = TrainConfig.from_dict(
        {
            "run_dir": str(tmp_path / "run"),
            "max_steps": 3,
            "progress": False,
            "tensorboard": False,
            "log_every": 1,
            "rl": {"method": "mrt", "samples": 3, "reward": "chrf", "kl_weight": 0.1, "mle_weight": 0.5},
        }
    )
    Trainer(cfg, model=model, tokenizer=tokenizer, train_stream=_stream(tokenizer)).fit()
    records = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "rl"]
    assert len(records) == 3 and all(set(r) >= {"reward", "baseline", "kl", "sample_length"} for r in records)
    assert all(0.0 <= r["reward"] <= 1.0 for r in records)


def test_metric_rewards_are_per_example_and_scaled_to_one():
    reward = reward_function("exact_match")
    assert reward(["a b", "c"], ["a b", "d"]) == [1.0, 0.0]
    chrf = reward_function("chrf")
    scores = chrf(["the king", "xyz"], ["the king", "the king"])
    assert scores[0] == pytest.approx(1.0) and 0.0 <= scores[1] < 0.2


def test_tokens_after_the_end_of_a_sample_do_not_count():
    targets = torch.tensor([[5, 6, 1, 0, 0], [5, 1, 7, 1, 0]])
    keep = _up_to_eos(targets, eos_id=1, pad_id=0)
    assert keep.tolist() == [[True, True, True, False, False], [True, True, False, False, False]]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"method": "mrt", "samples": 1}, "set samples to 2 or more"),
        ({"method": "ppo"}, "method='ppo' is not one of"),
        ({"method": "scst", "temperature": 0.0}, "temperature=0.0 is out of range"),
    ],
)
def test_rl_settings_are_checked_when_the_config_is_built(section, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict({"rl": section})
    with pytest.raises(ConfigError, match="both replace teacher forcing"):
        TrainConfig.from_dict({"rl": {"method": "scst"}, "scheduled_sampling": {"schedule": "constant"}})


def test_an_unknown_reward_fails_before_training(tokenizer, tmp_path):
    cfg = TrainConfig.from_dict(
        {"run_dir": str(tmp_path / "run"), "max_steps": 1, "rl": {"method": "scst", "reward": "chrff"}}
    )
    model = tiny_model_for(tokenizer, "encoder-decoder")
    trainer = Trainer(cfg, model=model, tokenizer=tokenizer, train_stream=_stream(tokenizer))
    with pytest.raises(ConfigError, match="unknown metric 'chrff'"):
        trainer.fit()
