"""What a run shows while it trains: metrics.jsonl, TensorBoard event files and a progress bar."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from t2t.utils.extras import MissingExtra, require

METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Records of metrics.jsonl; a half-written last line (a killed run) is skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_metrics(run_dir: Path, step: int) -> None:
    """On resume, drop records after the checkpoint's step: those steps are trained again."""
    from t2t.utils.io import atomic_write_text

    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept))


class RunLog:
    """Appends one JSON line per record (flushed, so a killed run keeps what it logged) and mirrors
    scalars to TensorBoard under `kind/name`."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self._fh = open(run_dir / METRICS_FILE, "a", encoding="utf-8") if enabled else None  # noqa: SIM115 (held for the run)
        self._tb = None
        if enabled and tensorboard:
            try:
                require("tensorboard", "tensorboard", "TensorBoard logging")
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir / "tensorboard"))
            except MissingExtra as missing:  # default-on, so a warning: metrics.jsonl has every record
                logging.getLogger("t2t").warning(
                    "%s (or set tensorboard: false); metrics.jsonl is written", missing
                )
                self._tb = None

    def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
        if not self.enabled or self._fh is None:
            return
        record = {"kind": kind, "step": step, **{k: _jsonable(v) for k, v in values.items()}}
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if self._tb is not None:
            for name, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self._tb.add_scalar(f"{kind}/{name}", value, step)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN / inf
    return value


DATA_COUNTS = ("truncated_inputs", "truncated_targets", "skipped_records")


def data_counts(stream: Any) -> dict[str, int]:
    """The stream's truncation and skipped-record counters (with the examples read), or {} when all
    are zero or the stream keeps no `stats`."""
    stats = getattr(stream, "stats", None)
    if not isinstance(stats, dict) or not any(stats.get(k) for k in DATA_COUNTS):
        return {}
    return {k: int(stats.get(k, 0)) for k in ("examples", *DATA_COUNTS)}


def describe_data_counts(stream: Any, counts: dict[str, int]) -> str:
    """One line about the data a run read: the stream's own `stats.summary()` when it has one, and
    which settings to raise when examples were cut."""
    stats = getattr(stream, "stats", None)
    summary = getattr(stats, "summary", None)
    line = summary() if callable(summary) else "data: " + ", ".join(f"{v:,} {k}" for k, v in counts.items())
    cut = [
        f"data.{key}"
        for key, n in (("max_input_length", "truncated_inputs"), ("max_target_length", "truncated_targets"))
        if counts.get(n)
    ]
    return line + (f" (raise {' / '.join(cut)} to keep more)" if cut else "")


class Progress:
    """tqdm bar over optimizer steps with loss, learning rate and tokens per second; tqdm gives the ETA."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, smoothing=0.1)

    def update(
        self, n: int, loss: float, lr: float, tokens_per_s: float, ss_prob: float | None = None
    ) -> None:
        """`ss_prob`: the scheduled-sampling probability of the step, shown as `ss_p` when given."""
        if self._bar is None:
            return
        shown = {"loss": f"{loss:.4f}", "lr": f"{lr:.2e}", "tok_s": f"{tokens_per_s:,.0f}"}
        if ss_prob is not None:
            shown["ss_p"] = f"{ss_prob:.3f}"
        self._bar.set_postfix(shown, refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
