"""Evaluation during training: task metrics through t2t.evaluate, validation loss, best metric, patience."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from t2t.errors import ConfigError
from t2t.train.config import EvalSection
from t2t.train.loss import count_targets, loss_kind, loss_sums

EvalFn = Callable[[Any, int], dict[str, float]]


def task_scores(model: Any, tokenizer: Any, tasks: Sequence[Any], cfg: EvalSection) -> dict[str, float]:
    """`TASK/METRIC -> value` for each validation task, through t2t.evaluate.evaluate."""
    from t2t.evaluate import evaluate

    report = evaluate(
        model,
        tokenizer,
        list(tasks),
        split=cfg.split,
        batch_size=cfg.batch_size,
        max_new_tokens=cfg.max_new_tokens,
        limit=cfg.limit,
        progress=False,
    )
    return {
        f"{task}/{name}": float(v) for task, scores in report.scores.items() for name, v in scores.items()
    }


@torch.no_grad()
def stream_loss(model: Any, batches: Iterable[dict[str, torch.Tensor]], device: torch.device) -> float:
    """Token-weighted cross-entropy over a finite stream (no label smoothing, no dropout)."""
    kind = loss_kind(model)
    total, tokens, rows = 0.0, 0, 0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        n_tok, n_rows = count_targets(batch, kind)
        sums, _ = loss_sums(model, model, batch, kind)
        total += float(sums.tokens) + float(sums.rows)
        tokens += n_tok
        rows += n_rows
    return total / max(tokens + rows, 1)


def select(metrics: dict[str, float], name: str) -> float:
    """The metric that decides the best checkpoint: a key of `metrics`, or "mean" of each task's first."""
    if name == "mean":
        firsts: dict[str, float] = {}
        for key, value in metrics.items():
            if "/" in key:
                firsts.setdefault(key.split("/", 1)[0], value)
        if not firsts:
            raise ConfigError("eval.metric='mean' needs eval.tasks; no task metric was computed")
        return sum(firsts.values()) / len(firsts)
    if name not in metrics:
        from t2t.configbase import closest

        raise ConfigError(
            f"eval.metric={name!r} was not computed; have {', '.join(sorted(metrics)) or 'nothing'}"
            f"{closest(name, metrics)}"
        )
    return metrics[name]


@dataclass
class BestTracker:
    """Best value of the chosen metric, the step it came from, and evaluations since it improved."""

    maximize: bool
    best: float | None = None
    best_step: int | None = None
    since_best: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def update(self, step: int, value: float) -> bool:
        """Record an evaluation; True when it is a new best."""
        improved = math.isfinite(value) and (
            self.best is None or (value > self.best if self.maximize else value < self.best)
        )
        if improved:
            self.best, self.best_step, self.since_best = value, step, 0
        else:
            self.since_best += 1
        return improved

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "since_best": self.since_best,
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = state["best"], state["best_step"]
        self.since_best, self.history = state["since_best"], list(state["history"])


@dataclass
class Evaluation:
    metrics: dict[str, float]
    improved: bool  # a new best of the chosen metric
    stop: bool  # eval.patience evaluations without improvement


class Evaluator:
    """Scores the model (the objective's evaluate and an eval_fn of the caller's), picks the value of
    the chosen metric, and keeps the best one and the patience count (saved with the checkpoint)."""

    def __init__(
        self,
        cfg: EvalSection,
        evaluate: Callable[[Any], dict[str, float]] | None,
        eval_fn: EvalFn | None,
        metric: str,
    ) -> None:
        self.cfg, self.evaluate, self.eval_fn, self.metric = cfg, evaluate, eval_fn, metric
        self.best = BestTracker(maximize=cfg.maximize(metric))

    @property
    def active(self) -> bool:
        return self.evaluate is not None or self.eval_fn is not None

    def compute(self, model: Any, step: int) -> dict[str, float]:
        """Every metric, with the model in eval mode (and back in train mode after)."""
        metrics: dict[str, float] = {}
        model.eval()
        try:
            if self.evaluate is not None:
                metrics.update(self.evaluate(model))
            if self.eval_fn is not None:
                metrics.update({k: float(v) for k, v in self.eval_fn(model, step).items()})
        finally:
            model.train()
        return metrics

    def record(self, step: int, metrics: dict[str, float]) -> Evaluation:
        improved = self.best.update(step, select(metrics, self.metric))
        self.best.history.append({"step": step, **metrics})
        patience = self.cfg.patience
        return Evaluation(metrics, improved, bool(patience and self.best.since_best >= patience))
