"""Curves of a run directory (metrics.jsonl) drawn to a PNG with matplotlib."""

from __future__ import annotations

from pathlib import Path

from t2t.errors import DataError
from t2t.train.runlog import METRICS_FILE, read_metrics

_TRAIN_PANELS = (("loss", "training loss"), ("lr", "learning rate"), ("tokens_per_s", "tokens / s"))


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise DataError(f"{run_dir / METRICS_FILE}: no metrics; is {run_dir} a t2t run directory?")
    train = [r for r in records if r["kind"] == "train" and isinstance(r.get("loss"), float)]
    evals = [r for r in records if r["kind"] == "eval"]
    panels = [(k, t, train) for k, t in _TRAIN_PANELS if any(k in r for r in train)]
    sampling = [r for r in records if r["kind"] == "scheduled_sampling"]
    if sampling:
        panels.append(("ss_prob", "scheduled sampling p", sampling))
    metric_names = sorted({k for r in evals for k, v in r.items() if k not in ("kind", "step") and _num(v)})
    count = len(panels) + len(metric_names)
    cols = min(3, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, (key, title, source) in zip(flat, panels):
        steps = [r["step"] for r in source if key in r]
        values = [float(r[key]) for r in source if key in r]
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
    return isinstance(value, (int, float)) and not isinstance(value, bool)
