"""Checkpoints: a model directory (weights in safetensors + tokenizer) plus the trainer's state.

    RUN_DIR/checkpoints/step-000120/   config.json, model.safetensors, tokenizer files,
                                       trainer_state.pt (optimizer, scheduler, RNG, data position, ...),
                                       trainer_state.json (step and metrics, for people)
    RUN_DIR/checkpoints/last -> step-000120      best -> step-000100   (symlinks)

A checkpoint is written into a hidden temporary directory, every file fsynced, then renamed into place
in one step, and only then do the `last` / `best` links move: a crash at any moment leaves the previous
checkpoint whole and the links pointing at complete directories.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2t.errors import CheckpointError
from t2t.utils.io import _fsync_dir, atomic_write_text, atomic_write_with

STATE_FILE = "trainer_state.pt"
SUMMARY_FILE = "trainer_state.json"


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    root: Path,
    step: int,
    model: Any,
    tokenizer: Any,
    state: dict[str, Any],
    summary: dict[str, Any],
    *,
    weight_format: str = "auto",
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write checkpoint `step` under root and return its directory (links are not moved here)."""
    if state_dict is None:
        state_dict = model.state_dict()
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(
            f"refusing to save step {step}: weight {bad[0]!r} is not finite; the last good checkpoint "
            f"in {root} is kept"
        )
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write(tmp, model, tokenizer, state, summary, weight_format)
    except BaseException:  # an error or Ctrl-C mid-save: no half-written directory stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():  # the same step saved again (a resumed run): swap, then drop the old one
        old = root / f".{final.name}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)
    return final


def _write(
    directory: Path,
    model: Any,
    tokenizer: Any,
    state: dict[str, Any],
    summary: dict[str, Any],
    weight_format: str,
) -> None:
    from t2t.hub import save_pretrained

    save_pretrained(model, directory, format=weight_format)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    atomic_write_with(directory / STATE_FILE, lambda p: torch.save(state, p))
    atomic_write_text(directory / SUMMARY_FILE, json.dumps(summary, indent=2, default=str) + "\n")


def point(root: Path, name: str, target: Path) -> None:
    """Atomically make root/name a symlink to target (a sibling directory)."""
    link = root / name
    tmp = root / f".{name}.link-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target.name, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:  # Ctrl-C between the two calls: the old link stays, the new one goes
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(root)


def resolve_link(root: Path, name: str) -> Path | None:
    link = root / name
    if not link.is_symlink() and not link.is_dir():
        return None
    target = link.resolve()
    return target if target.is_dir() else None


def prune(root: Path, keep_last: int, protect: set[Path]) -> None:
    """Delete all but the newest `keep_last` step directories, never one in `protect`, and any leftover
    temporary directory of an interrupted save."""
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    protected = {p.resolve() for p in protect if p is not None}
    for old in steps[:-keep_last]:
        if old.resolve() not in protected:
            shutil.rmtree(old, ignore_errors=True)
    for leftover in root.glob(".step-*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def load_state(directory: Path) -> dict[str, Any]:
    path = directory / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: {STATE_FILE} is missing; not a training checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(f"{path}: cannot read trainer state ({type(err).__name__}: {err})") from None
