"""Task metrics: one `compute(name, predictions, references)` for every metric a Task can name.

    compute("exact_match", ["The Lamb!"], [["lamb", "a lamb"]])   # {"exact_match": 100.0}
    compute("rouge", predictions, references)                     # {"rouge1": .., "rouge2": .., "rougeL": ..}

References are strings or lists of acceptable strings (the best one counts). Percentages (accuracy, EM,
F1, BLEU, chrF, ROUGE) are on a 0-100 scale, correlations in [-1, 1]. See docs/evaluation.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from t2t.configbase import closest
from t2t.errors import ConfigError
from t2t.metrics.correlation import matthews, pearson, spearman
from t2t.metrics.overlap import bleu, chrf, rouge
from t2t.metrics.tagging import entities, entity_f1
from t2t.metrics.text import accuracy, exact_match, normalize_answer, token_f1

Metric = Callable[[Sequence, Sequence], dict[str, float]]

METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "exact_match": exact_match,
    "token_f1": token_f1,
    "bleu": bleu,
    "chrf": chrf,
    "rouge": rouge,
    "entity_f1": entity_f1,
    "pearson": pearson,
    "spearman": spearman,
    "matthews": matthews,
}


def get_metric(name: str) -> Metric:
    """The metric function; an unknown name is a ConfigError with the closest known one."""
    if name not in METRICS:
        raise ConfigError(
            f"unknown metric {name!r}{closest(name, METRICS)}; choose one of {', '.join(METRICS)}"
        )
    return METRICS[name]


def compute(name: str, predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Score predictions against references with the metric called `name`."""
    return get_metric(name)(predictions, references)


__all__ = [
    "METRICS",
    "accuracy",
    "bleu",
    "chrf",
    "compute",
    "entities",
    "entity_f1",
    "exact_match",
    "get_metric",
    "matthews",
    "normalize_answer",
    "pearson",
    "rouge",
    "spearman",
    "token_f1",
]
