"""Curves of a run directory (metrics.jsonl) drawn to a PNG with matplotlib.

The file may have been cut short by a killed run, or edited: a line that is not a JSON object with a
"kind" and an integer "step" is skipped with a warning naming file:line, and values that are not finite
numbers are left out of the curves.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from t2t.errors import DataError
from t2t.train.runlog import METRICS_FILE
from t2t.utils.extras import require

_TRAIN_PANELS = (("loss", "training loss"), ("lr", "learning rate"), ("tokens_per_s", "tokens / s"))
_PLOTTABLE = 1e100  # larger values (a diverged loss) are left out of the curves, as NaN and inf are
_WARN_AT_MOST = 10  # skipped lines warned about one by one; the rest are counted in one more warning


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl that a plot can use; every other line is skipped with a warning."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); is it a metrics.jsonl?"
        ) from None
    records, skipped = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record, problem = _record(line)
        if problem:
            skipped.append(f"{path}:{number}: {problem}; line skipped")
        else:
            records.append(record)
    for message in skipped[:_WARN_AT_MOST]:
        warnings.warn(message, stacklevel=2)
    if len(skipped) > _WARN_AT_MOST:
        warnings.warn(f"{path}: {len(skipped) - _WARN_AT_MOST} more lines skipped", stacklevel=2)
    return records


def _record(line: str) -> tuple[dict[str, Any], str | None]:
    """A line's record, or what is wrong with it."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        return {}, f"not valid JSON ({err.msg}, column {err.colno}; a run killed while writing?)"
    except RecursionError:
        return {}, "JSON nested too deeply"
    if not isinstance(value, dict):
        return (
            {},
            f'expected a JSON object like {{"kind": "train", "step": 1, ...}}, got {type(value).__name__}',
        )
    step = value.get("step")
    if not isinstance(value.get("kind"), str) or not _num(step) or not isinstance(step, int):
        return {}, 'a record needs "kind" (text) and "step" (an integer)'
    return value, None


def _smooth(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Training loss (raw and smoothed), learning rate, throughput, scheduled-sampling probability and
    each evaluation metric, one panel each. Returns the PNG path (default RUN_DIR/curves.png)."""
    matplotlib = require("matplotlib", "plot", "t2t plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_records(run_dir / METRICS_FILE)
    if not records:
        raise DataError(f"{run_dir / METRICS_FILE}: no metrics; is {run_dir} a t2t run directory?")
    train = [r for r in records if r["kind"] == "train" and _num(r.get("loss"))]
    evals = [r for r in records if r["kind"] == "eval"]
    panels = [(k, t, train) for k, t in _TRAIN_PANELS if any(_num(r.get(k)) for r in train)]
    sampling = [r for r in records if r["kind"] == "scheduled_sampling"]
    if any(_num(r.get("ss_prob")) for r in sampling):
        panels.append(("ss_prob", "scheduled sampling p", sampling))
    metric_names = sorted({k for r in evals for k, v in r.items() if k not in ("kind", "step") and _num(v)})
    count = len(panels) + len(metric_names)
    if not count:
        raise DataError(
            f"{run_dir / METRICS_FILE}: no numbers to plot (loss, lr, eval metrics) in its records"
        )
    cols = min(3, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, (key, title, source) in zip(flat, panels):
        steps = [r["step"] for r in source if _num(r.get(key))]
        values = [float(r[key]) for r in source if _num(r.get(key))]
        ax.plot(steps, values, lw=0.8, alpha=0.5 if key == "loss" else 1.0)
        if key == "loss" and len(values) > 10:
            ax.plot(steps, _smooth(values, max(2, len(values) // 20)), lw=1.5, label="smoothed")
            ax.legend()
        ax.set_title(title)
        ax.set_xlabel("step")
    for ax, name in zip(flat[len(panels) :], metric_names):
        points = [(r["step"], float(r[name])) for r in evals if _num(r.get(name))]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        ax.set_title(f"eval: {name}")
        ax.set_xlabel("step")
    for ax in flat[count:]:
        ax.axis("off")
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    target = Path(out) if out else run_dir / "curves.png"
    from t2t.utils.io import atomic_write_with

    atomic_write_with(target, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    return target


def _num(value: object) -> bool:
    """A number a curve can show: not NaN or infinite, and within _PLOTTABLE (matplotlib's tick
    arithmetic overflows on an axis spanning numbers near float's limit)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return abs(value) <= _PLOTTABLE  # False for NaN; an int of any size compares exactly
