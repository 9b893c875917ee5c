"""The scores of one task's predictions: every metric the recipe names, from `t2t.metrics`."""

from __future__ import annotations

from collections.abc import Sequence

from t2t.metrics import compute


def score(metrics: Sequence[str], predictions: list, references: list) -> dict[str, float]:
    scores: dict[str, float] = {}
    for name in metrics:
        scores.update(compute(name, predictions, references))
    return scores
