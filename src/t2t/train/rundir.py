"""A run directory holds one run: a new run never lands silently on top of an old one.

Training into a directory an earlier run used would overwrite some of its checkpoints, leave stale ones
beside a moved `last` link and append a second run to metrics.jsonl (so `t2t plot` would draw both as
one). So a run directory that already holds a run is refused unless the run continues it (`resume`) or
replaces it (`overwrite`, which removes only what a run writes: files of the user's own stay).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from t2t.errors import ConfigError
from t2t.train.runlog import METRICS_FILE
from t2t.utils.io import unwritable

# Everything a training run writes at the top of its run_dir.
RUN_ENTRIES = (
    "checkpoints",
    METRICS_FILE,
    "config.yaml",
    "tensorboard",
    "forgetting.json",
    "forgetting.md",
    "curves.png",
    "results.json",
)


def earlier_run(run_dir: Path) -> list[str]:
    """The entries of an earlier run in run_dir (empty when there is none)."""
    if not run_dir.is_dir():
        return []
    return sorted(
        entry for entry in RUN_ENTRIES if (run_dir / entry).exists() or (run_dir / entry).is_symlink()
    )


def check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse a run_dir that cannot hold this run, before any work: a file where the directory should
    be, or an earlier run that is neither resumed nor replaced."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run_dir={run_dir} is a file; give a directory (it is created if missing)")
    problem = unwritable(run_dir)
    if problem:
        raise ConfigError(f"run_dir={run_dir}: {problem}")
    if resume and overwrite:
        raise ConfigError("resume and overwrite are both set; give one (--resume continues the run)")
    if resume or overwrite:
        return
    found = earlier_run(run_dir)
    if found:
        raise ConfigError(
            f"run_dir={run_dir} already holds a run ({', '.join(found)}); continue it with --resume, "
            "replace it with --overwrite, or give another run_dir"
        )


def clear_earlier_run(run_dir: Path) -> list[str]:
    """Remove what an earlier run wrote in run_dir (for `overwrite`); returns what was removed."""
    removed = earlier_run(run_dir)
    for entry in removed:
        path = run_dir / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed
