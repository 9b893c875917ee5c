"""Forgetting report of incremental learning: each earlier task's metrics before and after training."""

from __future__ import annotations

import json
from pathlib import Path

from t2t.utils.io import atomic_write_text


def forgetting(before: dict[str, float], after: dict[str, float]) -> dict[str, dict[str, float]]:
    """`TASK/METRIC -> {before, after, change}`; change = after - before (negative: forgotten)."""
    return {
        key: {"before": before[key], "after": after[key], "change": after[key] - before[key]}
        for key in before
        if key in after
    }


def write_forgetting_report(
    run_dir: Path, before: dict[str, float], after: dict[str, float], share: float
) -> dict[str, dict[str, float]]:
    rows = forgetting(before, after)
    atomic_write_text(
        run_dir / "forgetting.json", json.dumps({"replay_share": share, "metrics": rows}, indent=2) + "\n"
    )
    lines = [
        f"# Forgetting of earlier tasks (replay share {share:g})",
        "",
        "| task/metric | before | after | change |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {k} | {v['before']:.2f} | {v['after']:.2f} | {v['change']:+.2f} |" for k, v in rows.items()]
    atomic_write_text(run_dir / "forgetting.md", "\n".join(lines) + "\n")
    return rows
