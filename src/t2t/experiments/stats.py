"""Aggregating runs over seeds: mean ± standard deviation, and whether two variants differ clearly
(Welch's two-sided t-test at the 5% level; with fewer than two seeds a side nothing counts as clear)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

# Two-sided 5% critical values of Student's t by degrees of freedom (Welch's df is rounded down).
_T_CRITICAL = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    30: 2.042,
    60: 2.000,
}


def finite(values: Iterable[Any]) -> list[float]:
    return [
        float(v)
        for v in values
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]


def mean(values: Sequence[float]) -> float:
    values = finite(values)
    return sum(values) / len(values) if values else math.nan


def std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0 for one value, NaN for none."""
    values = finite(values)
    if not values:
        return math.nan
    if len(values) == 1:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def t_critical(df: float) -> float:
    if not math.isfinite(df) or df > 60:
        return 1.96
    keys = [k for k in _T_CRITICAL if k <= max(1.0, df)]
    return _T_CRITICAL[max(keys)]


def compare(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """mean(a) - mean(b), Welch's t, and clear (1.0 when |t| exceeds the 5% critical value)."""
    a, b = finite(a), finite(b)
    diff = mean(a) - mean(b)
    if len(a) < 2 or len(b) < 2:
        return {"diff": diff, "t": math.nan, "clear": 0.0}
    va, vb = std(a) ** 2 / len(a), std(b) ** 2 / len(b)
    if va + vb == 0:
        return {"diff": diff, "t": math.inf if diff else 0.0, "clear": 1.0 if diff else 0.0}
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / ((va**2 / (len(a) - 1)) + (vb**2 / (len(b) - 1)))
    return {"diff": diff, "t": t, "clear": 1.0 if abs(t) > t_critical(df) else 0.0}


def fmt(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude >= 1e5 or magnitude < 1e-3):
        return f"{value:.{max(1, digits - 1)}e}"
    if magnitude >= 100:
        return f"{value:.1f}"
    return f"{value:.{digits}g}" if magnitude < 1 else f"{value:.{max(1, digits - 1)}f}"


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """ "m ± s" over the finite values (just "m" for one; "-" for none)."""
    values = finite(values)
    if not values:
        return "-"
    if len(values) == 1:
        return fmt(values[0], digits)
    return f"{fmt(mean(values), digits)} ± {fmt(std(values), digits)}"
