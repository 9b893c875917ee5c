"""Evaluation during training: validation loss, hooks, the best checkpoint and early stopping."""

from __future__ import annotations

import pytest

import t2t
from t2t.errors import ConfigError
from t2t.train import Trainer, read_metrics
from test_train_support import ToyStream, config, tiny_model


@pytest.mark.slow
def test_eval_loss_every_n_steps_picks_the_best_checkpoint(tmp_path):
    cfg = config(tmp_path, max_steps=12, eval={"every": 4}, checkpoint={"keep_last": 1})
    stream = lambda: ToyStream(8, seed=99, limit=2)  # noqa: E731 (a fresh finite validation stream)
    result = Trainer(cfg, model=tiny_model(), train_stream=ToyStream(), eval_stream=stream).fit()
    steps = [h["step"] for h in result.eval_history]
    assert steps == [4, 8, 12]
    losses = [h["eval_loss"] for h in result.eval_history]
    best_step = [4, 8, 12][losses.index(min(losses))]
    assert result.best_metric == min(losses)
    assert result.best_checkpoint.name == f"step-{best_step:06d}"
    assert t2t.from_pretrained(result.best_checkpoint) is not None
    evals = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "eval"]
    assert [r["eval_loss"] for r in evals] == losses


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path):
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9, 0.95])
    seen = []

    def hook(model, step):
        seen.append(step)
        return {"accuracy": next(scores)}

    cfg = config(tmp_path, max_steps=50, eval={"every": 2, "metric": "accuracy", "patience": 2})
    result = Trainer(cfg, model=tiny_model(), train_stream=ToyStream(), eval_fn=hook).fit()
    assert result.stopped_early and result.step == 8 and seen == [2, 4, 6, 8]
    assert result.best_metric == 0.7 and result.best_checkpoint.name == "step-000004"


def test_minimised_metric_and_unknown_metric(tmp_path):
    values = iter([3.0, 2.0, 2.5])
    cfg = config(tmp_path, max_steps=6, eval={"every": 2, "metric": "perplexity", "mode": "min"})
    result = Trainer(
        cfg, model=tiny_model(), train_stream=ToyStream(), eval_fn=lambda m, s: {"perplexity": next(values)}
    ).fit()
    assert result.best_metric == 2.0 and result.best_checkpoint.name == "step-000004"
    bad = config(tmp_path / "bad", max_steps=2, eval={"every": 1, "metric": "acuracy"})
    with pytest.raises(ConfigError, match=r"eval.metric='acuracy' was not computed.*did you mean 'accuracy'"):
        Trainer(
            bad, model=tiny_model(), train_stream=ToyStream(), eval_fn=lambda m, s: {"accuracy": 1.0}
        ).fit()


def test_eval_runs_in_eval_mode_and_training_resumes_in_train_mode(tmp_path):
    modes = []
    model = tiny_model(dropout=0.1)
    cfg = config(tmp_path, max_steps=2, eval={"every": 1, "metric": "x"})
    Trainer(
        cfg, model=model, train_stream=ToyStream(), eval_fn=lambda m, s: modes.append(m.training) or {"x": 1}
    ).fit()
    assert modes == [False, False] and model.training
