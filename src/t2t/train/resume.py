"""What a resumed run may change: config.yaml must tell the truth about the run that produced it.

A resumed run continues the same run, so what decides which examples it sees and what model it trains
(the model, the data, the seed, the accumulation) cannot change; a change there is refused with one
line. Hyperparameters of the update (learning rate and schedule, weight decay, clipping, label
smoothing, scheduled sampling, bf16, max_steps) are applied from the resumed step on and each change
is reported. Settings of logging, evaluation, checkpoints and the device change without remark.
"""

from __future__ import annotations

from typing import Any

from t2t.errors import ConfigError

_FIXED = ("model.", "data.", "seed", "grad_accum_steps", "optim.name", "peft.")
_FREE_ANYWAY = ("data.replay.report", "data.workers")  # workers make the same batches
_SILENT = (
    "run_dir",
    "resume",
    "overwrite",
    "progress",
    "tensorboard",
    "log_every",
    "device",
    "max_bad_steps",
    "distributed.",
    "checkpoint.",
    "eval.",
)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim": {"lr": 1}} -> {"optim.lr": 1}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in patterns)


def resume_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The applied changes as `key: old -> new` lines; a change that a resumed run cannot make is a
    ConfigError naming the key."""
    before, after = flatten(saved), flatten(current)
    applied = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new or key not in before or _matches(key, _SILENT):
            continue  # a key the checkpoint's version of t2t did not have takes its default
        if _matches(key, _FIXED) and not _matches(key, _FREE_ANYWAY):
            raise ConfigError(
                f"{key}={new!r} differs from the checkpoint's {old!r}; a resumed run keeps it (set it "
                "back), or start a new run with --overwrite or another run_dir"
            )
        applied.append(f"{key}: {old!r} -> {new!r}")
    return applied
