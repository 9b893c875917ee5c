"""The experiments' figures (matplotlib, the `plot` extra), drawn from the runs' records."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from t2t.experiments.stats import finite, mean, std
from t2t.utils.extras import require

Record = dict[str, Any]


def _pyplot() -> Any:
    matplotlib = require("matplotlib", "plot", "the experiments' plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _runs(records: list[Record]) -> list[Record]:
    return [r for r in records if not r.get("stage")]


def _names(records: list[Record]) -> list[str]:
    out: list[str] = []
    for r in _runs(records):
        if r["variant"] not in out:
            out.append(r["variant"])
    return out


def _label(record: Record) -> str:
    point = ", ".join(
        f"{k.split('.')[-1]}={v:g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
        for k, v in record["point"].items()
    )
    return record["variant"] + (f" ({point})" if point else "")


def _mean_curve(curves: list[list[float | None]]) -> list[float]:
    width = max((len(c) for c in curves), default=0)
    out = []
    for t in range(width):
        column = finite(c[t] for c in curves if t < len(c))
        out.append(mean(column) if column else math.nan)
    return out


def _smooth(values: list[float], window: int) -> list[float]:
    if window <= 1:
        return values
    out = []
    for i in range(len(values)):
        chunk = finite(values[max(0, i - window + 1) : i + 1])
        out.append(mean(chunk) if chunk else math.nan)
    return out


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def loss_curves(records: list[Record], path: Path) -> None:
    plt = _pyplot()
    groups: dict[str, list[list[float | None]]] = {}
    for r in _runs(records):
        if r["curves"].get("loss"):
            groups.setdefault(_label(r), []).append(r["curves"]["loss"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    many = len(groups) > 12
    for label, curves in groups.items():
        curve = _mean_curve(curves)
        ax.plot(
            range(1, len(curve) + 1),
            _smooth(curve, max(1, len(curve) // 50)),
            label=None if many else label,
            lw=1,
        )
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (mean over seeds)")
    ax.set_yscale("log")
    if groups and not many:
        ax.legend(fontsize=7)
    _save(fig, path)


def lr_sweep(
    records: list[Record], path: Path, lr_key: str, depth_key: str, warmup_key: str, threshold: float
) -> None:
    plt = _pyplot()
    depths = sorted({r["point"].get(depth_key) for r in _runs(records)}, key=lambda x: (x is None, x))
    fig, axes = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 3.8), squeeze=False)
    for ax, depth in zip(axes[0], depths, strict=True):
        for k, name in enumerate(_names(records)):
            warmups = sorted(
                {r["point"].get(warmup_key) for r in _runs(records)}, key=lambda x: (x is None, x)
            )
            for warmup in warmups:
                group = [
                    r
                    for r in _runs(records)
                    if r["variant"] == name
                    and r["point"].get(depth_key) == depth
                    and r["point"].get(warmup_key) == warmup
                ]
                lrs = sorted({r["point"][lr_key] for r in group})
                ys = []
                for lr in lrs:
                    losses = [
                        r["metrics"].get("final_loss") if r["status"] == "ok" else math.nan
                        for r in group
                        if r["point"][lr_key] == lr
                    ]
                    ok = finite(losses)
                    ys.append(mean(ok) if len(ok) * 2 > len(losses) else math.nan)
                ax.plot(
                    lrs,
                    ys,
                    marker="o",
                    color=f"C{k}",
                    ls="--" if warmup else "-",
                    label=f"{name}" + (f", warm-up {warmup}" if warmup else ""),
                )
        ax.axhline(threshold, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_title(f"{depth} layers" if depth is not None else "")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final loss (gap: diverged)")
    axes[0][0].legend(fontsize=7)
    _save(fig, path)


def grad_profile(records: list[Record], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, name in enumerate(_names(records)):
        profiles = [
            r["curves"]["grad_norms"][-1]
            for r in _runs(records)
            if r["variant"] == name and r["curves"].get("grad_norms")
        ]
        if not profiles:
            continue
        curve = _mean_curve(profiles)
        ax.plot(range(len(curve)), curve, marker="o", ms=3, color=f"C{k}", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("block (bottom to top)")
    ax.set_ylabel("gradient norm (probe batch)")
    ax.legend(fontsize=8)
    _save(fig, path)


def grad_over_time(records: list[Record], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, name in enumerate(_names(records)):
        group = [r for r in _runs(records) if r["variant"] == name and r["curves"].get("grad_norms")]
        if not group:
            continue
        steps = group[0]["curves"]["probe_steps"]
        bottom = _mean_curve([[g[0] for g in r["curves"]["grad_norms"]] for r in group])
        top = _mean_curve([[g[-1] for g in r["curves"]["grad_norms"]] for r in group])
        ax.plot(steps[: len(bottom)], bottom, color=f"C{k}", label=f"{name}: bottom block")
        ax.plot(steps[: len(top)], top, color=f"C{k}", ls=":", label=f"{name}: top block")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("gradient norm (probe batch)")
    ax.legend(fontsize=7)
    _save(fig, path)


def bars(records: list[Record], path: Path, metrics: list[str]) -> None:
    plt = _pyplot()
    names = _names(records)
    metrics = [m for m in metrics if any(m in r["metrics"] for r in _runs(records))] or ["final_loss"]
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(max(3.0, 1.0 + 0.6 * len(names)) * len(metrics), 3.8), squeeze=False
    )
    for ax, metric in zip(axes[0], metrics, strict=True):
        ms, ss = [], []
        for name in names:
            vals = finite(
                r["metrics"].get(metric)
                for r in _runs(records)
                if r["variant"] == name and r["status"] == "ok"
            )
            ms.append(mean(vals) if vals else 0.0)
            ss.append(std(vals) if vals else 0.0)
        ax.bar(range(len(names)), ms, yerr=ss, color=[f"C{k}" for k in range(len(names))], capsize=3)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric.replace("quickstart_", "").replace("test/", ""), fontsize=9)
    _save(fig, path)


def position_errors(records: list[Record], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, name in enumerate(_names(records)):
        group = [r for r in _runs(records) if r["variant"] == name and r["curves"].get("position_error_free")]
        if not group:
            continue
        free = _mean_curve([r["curves"]["position_error_free"] for r in group])
        forced = _mean_curve([r["curves"]["position_error_forced"] for r in group])
        ax.plot([100 * x for x in free], color=f"C{k}", label=f"{name} (free-running)")
        ax.plot([100 * x for x in forced], color=f"C{k}", ls=":", label=f"{name} (teacher-forced)")
    ax.set_xlabel("output position (tokens)")
    ax.set_ylabel("error rate (%)")
    ax.legend(fontsize=7)
    _save(fig, path)


def transfer(records: list[Record], path: Path, axis: str, metrics: list[str], names: list[str]) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.0 * len(metrics), 4.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for k, name in enumerate(names):
            group = [r for r in _runs(records) if r["variant"] == name]
            shares = sorted({r["point"][axis] for r in group if axis in r["point"]})
            ms, ss = [], []
            for s in shares:
                vals = finite(
                    r["metrics"].get(metric)
                    for r in group
                    if r["point"].get(axis) == s and r["status"] == "ok"
                )
                ms.append(mean(vals) if vals else math.nan)
                ss.append(std(vals) if vals else math.nan)
            ax.errorbar(
                [100 * s for s in shares], ms, yerr=ss, marker="o", capsize=3, color=f"C{k}", label=name
            )
        ax.set_xscale("log")
        ax.set_xlabel("share of each task's training data (%)")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    _save(fig, path)


def rounds(records: list[Record], path: Path, metric: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, name in enumerate(_names(records)):
        group = [
            r["curves"]["rounds"]
            for r in _runs(records)
            if r["variant"] == name and r["curves"].get("rounds")
        ]
        if not group:
            continue
        width = max(map(len, group))
        score = [mean(finite(g[i].get(metric) for g in group if i < len(g))) for i in range(width)]
        accuracy = [
            mean(finite(g[i].get("pseudo_accuracy") for g in group if i < len(g))) for i in range(width)
        ]
        ax.plot(range(width), score, marker="o", color=f"C{k}", label=f"{name}: {metric}")
        ax.plot(
            range(width), accuracy, marker="s", ls=":", color=f"C{k}", label=f"{name}: pseudo-label accuracy"
        )
    ax.set_xlabel("round (0: labelled data only)")
    ax.legend(fontsize=7)
    _save(fig, path)
