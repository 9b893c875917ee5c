"""Evaluation during training: validation loss, hooks, the best checkpoint and early stopping."""

from __future__ import annotations

import pytest

import t2t
from t2t.data import Task, register_task
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


def test_minimised_metric_and_unknown_metric_of_an_eval_fn(tmp_path):
    values = iter([3.0, 2.0, 2.5])
    cfg = config(tmp_path, max_steps=6, eval={"every": 2, "metric": "perplexity", "mode": "min"})
    result = Trainer(
        cfg, model=tiny_model(), train_stream=ToyStream(), eval_fn=lambda m, s: {"perplexity": next(values)}
    ).fit()
    assert result.best_metric == 2.0 and result.best_checkpoint.name == "step-000004"
    # an eval_fn's keys are known only when it runs: a typo there fails at the first evaluation
    bad = config(tmp_path / "bad", max_steps=2, eval={"every": 1, "metric": "acuracy"})
    with pytest.raises(ConfigError, match=r"eval.metric='acuracy' was not computed.*did you mean 'accuracy'"):
        Trainer(
            bad, model=tiny_model(), train_stream=ToyStream(), eval_fn=lambda m, s: {"accuracy": 1.0}
        ).fit()


@pytest.fixture
def registered(tmp_path):
    """Two validation tasks: one scored by accuracy, one by ROUGE (three keys)."""
    path = tmp_path / "validation.jsonl"
    path.write_text('{"inputs": "a", "targets": "b"}\n')
    register_task(Task("colours", {"validation": path}, metrics=["accuracy"]), overwrite=True)
    register_task(Task("digest", {"validation": path}, metrics=["rouge"]), overwrite=True)
    register_task(Task("trainonly", {"train": path}), overwrite=True)


def _construct(tmp_path, **eval_section):
    cfg = config(tmp_path, max_steps=2, eval={"every": 1, **eval_section})
    return Trainer(cfg, model=tiny_model(), train_stream=ToyStream())


@pytest.mark.usefixtures("registered")
def test_eval_config_errors_are_raised_before_anything_runs(tmp_path):
    """Unknown task names and metrics no evaluation computes fail when the Trainer is built, naming the
    key and the closest valid value, before a run directory exists or a step is taken."""
    with pytest.raises(
        ConfigError, match=r"eval.tasks: no task or mixture named 'colors' \(did you mean 'colours'"
    ):
        _construct(tmp_path, tasks=["colors"])
    with pytest.raises(ConfigError, match=r"eval.metric='colours/acuracy' .*did you mean 'colours/accuracy'"):
        _construct(tmp_path, tasks=["colours"], metric="colours/acuracy")
    with pytest.raises(ConfigError, match=r"eval.metric='eval_loss' .*set eval.loss: true"):
        _construct(tmp_path, tasks=["colours"], metric="eval_loss")
    with pytest.raises(ConfigError, match=r"eval.metric='mean' .*needs eval.tasks"):
        cfg = config(tmp_path, max_steps=2, eval={"every": 1, "metric": "mean"})
        Trainer(cfg, model=tiny_model(), train_stream=ToyStream(), eval_stream=[])
    with pytest.raises(ConfigError, match=r"data.replay.tasks: no task or mixture named 'colour'"):
        cfg = config(tmp_path, data={"replay": {"tasks": ["colour"], "share": 0.5}})
        Trainer(cfg, model=tiny_model(), train_stream=ToyStream())
    # every split the run reads exists
    with pytest.raises(
        ConfigError, match=r"eval.split: task 'trainonly' has no 'validation' split \(eval.tasks\)"
    ):
        _construct(tmp_path, tasks=["trainonly"])
    with pytest.raises(
        ConfigError, match=r"eval.split: task 'trainonly' .* \(eval.loss reads it from the training"
    ):
        cfg = config(tmp_path, data={"task": "trainonly"}, eval={"loss": True})
        Trainer(cfg, model=tiny_model(), train_stream=ToyStream())
    with pytest.raises(ConfigError, match=r"eval.loss: true reads the validation split of data.task"):
        Trainer(config(tmp_path, eval={"loss": True}), model=tiny_model(), train_stream=ToyStream())
    with pytest.raises(ConfigError, match=r"data.task: 'trainonyl' is neither .*did you mean 'trainonly'"):
        Trainer(config(tmp_path, data={"task": "trainonyl"}), model=tiny_model())
    assert not (tmp_path / "run").exists()
    # what the tasks do produce is accepted: every key of a multi-key metric, the mean, the loss
    assert _construct(tmp_path, tasks=["colours", "digest"], metric="digest/rougeL").metric == "digest/rougeL"
    assert _construct(tmp_path, tasks=["colours", "digest"]).metric == "mean"
    cfg = config(tmp_path, eval={"tasks": ["digest"], "metric": "eval_loss"})
    trainer = Trainer(cfg, model=tiny_model(), train_stream=ToyStream(), eval_stream=lambda: [])
    assert [t.name for t in trainer.eval_tasks] == ["digest"]


def test_eval_runs_in_eval_mode_and_training_resumes_in_train_mode(tmp_path):
    modes = []
    model = tiny_model(dropout=0.1)
    cfg = config(tmp_path, max_steps=2, eval={"every": 1, "metric": "x"})
    Trainer(
        cfg, model=model, train_stream=ToyStream(), eval_fn=lambda m, s: modes.append(m.training) or {"x": 1}
    ).fit()
    assert modes == [False, False] and model.training


def test_an_improving_evaluation_on_a_checkpoint_step_writes_one_checkpoint(tmp_path, monkeypatch):
    from t2t.train import checkpoint

    written: list[int] = []
    original = checkpoint.save_checkpoint

    def counting(root, step, *args, **kwargs):
        written.append(step)
        return original(root, step, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_checkpoint", counting)
    scores = iter([1.0, 2.0, 1.5])  # improves at steps 2 and 4, not at 6
    cfg = config(
        tmp_path, max_steps=6, eval={"every": 2, "metric": "x"}, checkpoint={"every": 2, "keep_last": 3}
    )
    result = Trainer(
        cfg, model=tiny_model(), train_stream=ToyStream(), eval_fn=lambda m, s: {"x": next(scores)}
    ).fit()
    assert written == [2, 4, 6]
    assert result.best_checkpoint.name == "step-000004" and result.last_checkpoint.name == "step-000006"
