"""Input checks shared by the metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from t2t.errors import DataError


def check_pairs(predictions: Sequence, references: Sequence) -> None:
    """One prediction per reference, and at least one of each."""
    if len(predictions) != len(references):
        raise DataError(f"{len(predictions)} predictions but {len(references)} references; pass one each")
    if not len(references):
        raise DataError("no examples to score; the evaluation split is empty")


def options(reference: Any) -> list:
    """The acceptable answers of a reference: a list or tuple as it is, anything else alone."""
    return list(reference) if isinstance(reference, (list, tuple)) else [reference]


def first(reference: Any) -> Any:
    """The one value of a reference for metrics that cannot take alternatives (correlations)."""
    values = options(reference)
    if not values:
        raise DataError("a reference is an empty list; give at least one acceptable answer")
    return values[0]
