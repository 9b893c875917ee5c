"""What varies between kinds of training, as one small object the Trainer takes.

    Objective(name, stream, evaluate, metric, examples_per_epoch)

- `stream`: how a batch is made: an iterator of batches whose keys are the model's forward arguments,
  with `state_dict()` / `load_state_dict()` so that a resumed run continues on the same batch;
- `evaluate(model) -> {name: value}`: how the model is scored on the evaluation split;
- `metric`: what picks the best checkpoint unless eval.metric names one;
- the loss is the model's kind's (t2t.train.loss: per target token for language models, per row for
  task heads), the same for every objective.

`text_objective` builds the text-to-text / span corruption / MLM / LM objective of t2t.data (a task or
a mixture, with replay of earlier tasks); `t2t.train.heads` builds the head objectives (BERT heads,
GPT's transformations, corpus pretraining).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from t2t.errors import ConfigError
from t2t.train import build, checks
from t2t.train.config import TrainConfig
from t2t.train.evaluation import stream_loss, task_scores

Evaluate = Callable[[Any], dict[str, float]]


@dataclass
class Objective:
    name: str
    stream: Iterable[Any]
    evaluate: Evaluate | None = None
    metric: str | None = None  # None: eval.metric's "auto" rule (eval_loss, else the tasks' mean)
    examples_per_epoch: int | None = None  # what `epochs` counts; None where the stream cannot say
    eval_stream: Any = None  # the validation batches the loss is computed on (a callable), if any


def text_objective(
    cfg: TrainConfig,
    model: Any,
    tokenizer: Any,
    *,
    eval_tasks: Sequence[Any],
    replay_tasks: Sequence[Any],
    train_stream: Iterable[Any] | None = None,
    eval_stream: Any = None,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[Objective, bool]:
    """The objective of a t2t.data source, and whether it computes a validation loss. Every split it
    will read is checked first, so a missing one fails before the first step."""
    builds_eval_stream = eval_stream is None and cfg.eval.loss
    _check_splits(cfg, eval_tasks, replay_tasks, train_stream is None, builds_eval_stream)
    arch = build.arch_of(model)
    if train_stream is None:
        if tokenizer is None:
            build.build_tokenizer(cfg)  # raises the ConfigError that says what is missing
        train_stream = _stream(cfg, tokenizer, arch, replay_tasks, rank, world_size)
    if builds_eval_stream:

        def eval_stream() -> Any:
            source = build.source_of(cfg)
            return build.build_stream(cfg, tokenizer, arch, source, split=cfg.eval.split, repeat=False)

    has_loss = eval_stream is not None
    evaluate = None
    if eval_tasks or has_loss:

        def evaluate(model: Any) -> dict[str, float]:
            metrics: dict[str, float] = {}
            if eval_tasks:
                metrics.update(task_scores(model, tokenizer, eval_tasks, cfg.eval))
            if eval_stream is not None:
                batches = eval_stream() if callable(eval_stream) else eval_stream
                metrics["eval_loss"] = stream_loss(model, batches, next(model.parameters()).device)
            return metrics

    objective = Objective(cfg.data.objective, train_stream, evaluate, eval_stream=eval_stream)
    return objective, has_loss


def _stream(
    cfg: TrainConfig, tokenizer: Any, arch: str, replay_tasks: Sequence[Any], rank: int, world_size: int
) -> Any:
    main = build.build_stream(cfg, tokenizer, arch, build.source_of(cfg), rank=rank, world_size=world_size)
    replay = build.replay_source(list(replay_tasks), cfg.data.replay.share)
    if replay is None:
        return main
    from t2t.train.replay import ReplayStream

    replayed = build.build_stream(
        cfg, tokenizer, arch, replay, rank=rank, world_size=world_size, seed_offset=1
    )
    return ReplayStream(main, replayed, cfg.data.replay.share)


def _check_splits(
    cfg: TrainConfig,
    eval_tasks: Sequence[Any],
    replay_tasks: Sequence[Any],
    builds_stream: bool,
    builds_eval_stream: bool,
) -> None:
    """Every split the run will read exists, before the first step."""
    split = cfg.eval.split
    checks.check_splits("eval.split", eval_tasks, split, " (eval.tasks)")
    if cfg.data.replay.report:
        checks.check_splits("eval.split", replay_tasks, split, " (data.replay.tasks are scored on it)")
    if cfg.data.replay.share > 0:
        checks.check_splits("data.replay.tasks", replay_tasks, "train")
    if not (builds_stream or builds_eval_stream):
        return
    if builds_eval_stream and not (cfg.data.task or cfg.data.mixture):
        raise ConfigError(
            "eval.loss: true reads the validation split of data.task / data.mixture; set one, or pass "
            "eval_stream="
        )
    key = "data.mixture" if cfg.data.mixture else "data.task"
    tasks = checks.source_tasks(key, build.source_of(cfg))
    if builds_stream:
        checks.check_splits(key, tasks, "train")
    if builds_eval_stream:
        checks.check_splits("eval.split", tasks, split, " (eval.loss reads it from the training source)")
