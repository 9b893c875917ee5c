"""Correlations: Pearson and Spearman for scores (STS-B), Matthews for labels (CoLA). Each lies in
[-1, 1]; where it is undefined (a constant input) it is 0.0, as scikit-learn's matthews_corrcoef
returns, so a report never holds NaN."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from t2t.errors import DataError
from t2t.metrics.base import check_pairs, first

INVALID_NUMBER = -1.0  # what a generated answer that is not a number reads as (T5's string_to_float)


def _number(value: Any, *, reference: bool, index: int) -> float:
    try:
        number = float(first(value) if reference else value)
    except (TypeError, ValueError):
        if reference:
            raise DataError(
                f"reference {index} is {value!r}, not a number; a correlation needs numbers"
            ) from None
        return INVALID_NUMBER
    return number if math.isfinite(number) else INVALID_NUMBER


def _numbers(predictions: Sequence, references: Sequence) -> tuple[list[float], list[float]]:
    check_pairs(predictions, references)
    x = [_number(p, reference=False, index=i) for i, p in enumerate(predictions)]
    y = [_number(r, reference=True, index=i) for i, r in enumerate(references)]
    return x, y


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    dx, dy = [a - mx for a in x], [b - my for b in y]
    denominator = math.sqrt(sum(a * a for a in dx) * sum(b * b for b in dy))
    return sum(a * b for a, b in zip(dx, dy)) / denominator if denominator else 0.0


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (scipy.stats.rankdata's default)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def pearson(predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Pearson's r; predictions that are not numbers read as -1.0."""
    x, y = _numbers(predictions, references)
    return {"pearson": _pearson(x, y)}


def spearman(predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Spearman's rho: Pearson's r of the ranks (ties averaged)."""
    x, y = _numbers(predictions, references)
    return {"spearman": _pearson(_ranks(x), _ranks(y))}


def matthews(predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Matthews correlation over any labels (two or more classes; the multiclass R_K statistic that
    scikit-learn's matthews_corrcoef computes, equal to the binary MCC for two)."""
    check_pairs(predictions, references)
    gold = [first(r) for r in references]
    n = len(gold)
    correct = sum(p == g for p, g in zip(predictions, gold))
    predicted, actual = Counter(predictions), Counter(gold)
    agreement = sum(predicted[k] * actual[k] for k in actual)
    covariance = correct * n - agreement
    spread_pred = n * n - sum(c * c for c in predicted.values())
    spread_gold = n * n - sum(c * c for c in actual.values())
    denominator = math.sqrt(spread_pred * spread_gold)
    return {"matthews": covariance / denominator if denominator else 0.0}
