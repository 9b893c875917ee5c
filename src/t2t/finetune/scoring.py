"""The scores of one task's predictions. The only importer of the metrics: `t2t.metrics` (EVAL
engineer) when it lands, until then the private stand-in with the same contract."""

from __future__ import annotations

from collections.abc import Sequence

from t2t.finetune._metrics import compute


def score(metrics: Sequence[str], predictions: list, references: list) -> dict[str, float]:
    scores: dict[str, float] = {}
    for name in metrics:
        scores.update(compute(name, predictions, references))
    return scores
