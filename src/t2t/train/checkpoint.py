"""Checkpoints: a model directory (weights in safetensors + tokenizer) plus the trainer's state.

    RUN_DIR/checkpoints/step-000120/   config.json, model.safetensors, tokenizer files,
                                       trainer_state.safetensors (optimizer, scheduler, RNG, data
                                       position, ...: tensors + a JSON tree, never a pickle),
                                       trainer_state.json (step and metrics, for people)
    RUN_DIR/checkpoints/last -> step-000120      best -> step-000100   (symlinks)

A checkpoint is written into a hidden temporary directory, every file fsynced, then renamed into place
in one step, and only then do the `last` / `best` links move: a crash at any moment leaves the previous
checkpoint whole and the links pointing at complete directories. Saving a step that exists already
swaps the two directories in one system call (renameat2 RENAME_EXCHANGE), so there is no moment when
the step is missing.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import random
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2t.errors import CheckpointError
from t2t.utils import state_file
from t2t.utils.io import _fsync_dir, atomic_write_text, atomic_write_with

STATE_FILE = "trainer_state.safetensors"
LEGACY_STATE_FILE = "trainer_state.pt"  # t2t <= 0.1: a pickle, read only through torch's safe loader
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
    extra: Callable[[Path], Any] | None = None,
) -> Path:
    """Write checkpoint `step` under root and return its directory (links are not moved here).
    extra(directory) writes more files into it before it is renamed into place (a PEFT adapter)."""
    if state_dict is None:
        state_dict = model.state_dict()
    problem = weight_problem(state_dict)
    if problem:
        good = resolve_link(root, "last")
        kept = f"the last good checkpoint, {good}, is kept" if good else "no earlier checkpoint exists"
        raise CheckpointError(f"refusing to save step {step}: {problem}; {kept}")
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write(tmp, model, tokenizer, state, summary, weight_format)
        if extra is not None:
            extra(tmp)
    except BaseException:  # an error or Ctrl-C mid-save: no half-written directory stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():  # the same step saved again (a resumed run): swap in one call, drop the old one
        _exchange(tmp, final)
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)
    return final


# Weights beyond this are a run that blew up without overflowing (one AdamW step at optim.lr=1e6 moves
# every weight by 1e6): no trained transformer's weights come near it (T5's largest are in the
# hundreds), and saving them as the "last good" checkpoint would hide the failure.
HUGE_WEIGHT = 1e5


def weight_problem(state_dict: dict[str, torch.Tensor]) -> str | None:
    """Why these weights are not worth keeping (non-finite or exploded), or None."""
    for name, value in state_dict.items():
        if not value.is_floating_point() or value.numel() == 0:
            continue
        if not torch.isfinite(value).all():
            return f"weight {name!r} is not finite"
        largest = float(value.abs().max())
        if largest > HUGE_WEIGHT:
            return (
                f"weight {name!r} has exploded (largest |value| {largest:.3g} > {HUGE_WEIGHT:.0e}: the run "
                "diverged; lower optim.lr)"
            )
    return None


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories atomically (Linux renameat2 RENAME_EXCHANGE). Where the call is missing
    (another OS, an old kernel or libc, a file system without it) fall back to two renames, which leave
    a moment without `b`."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = getattr(libc, "renameat2", None)
        if renameat2 is not None:
            at_fdcwd, rename_exchange = -100, 2
            if renameat2(at_fdcwd, bytes(a), at_fdcwd, bytes(b), rename_exchange) == 0:
                return
            code = ctypes.get_errno()
            if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
                raise OSError(code, os.strerror(code), str(a), None, str(b))
    old = b.with_name(f".{b.name}.old-{os.getpid()}")
    os.replace(b, old)
    os.replace(a, b)
    os.replace(old, a)


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
    atomic_write_with(directory / STATE_FILE, lambda p: state_file.save_state(state, p))
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
    """The trainer state of a checkpoint. Nothing read here can run code: the state file is
    safetensors + JSON; an older checkpoint's pickle goes through torch's weights-only unpickler,
    which refuses anything but tensors, containers, numbers and the numpy RNG state's arrays."""
    path = directory / STATE_FILE
    if path.is_file():
        state = state_file.load_state(path)
    elif (directory / LEGACY_STATE_FILE).is_file():
        state = _load_legacy(directory / LEGACY_STATE_FILE)
    else:
        raise CheckpointError(f"{directory}: {STATE_FILE} is missing; not a training checkpoint")
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CheckpointError(f"{path}: not a trainer state (no step); the checkpoint is damaged")
    return state


def _load_legacy(path: Path) -> dict[str, Any]:
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed it
    numpy_rng = [np.ndarray, np.dtype, np.dtypes.UInt32DType, core.multiarray._reconstruct]
    try:
        with torch.serialization.safe_globals(numpy_rng):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle that wants more than data, or a truncated file
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(err))
        reason = f"it names {found.group(1)}" if found else f"{type(err).__name__}"
        raise CheckpointError(
            f"{path}: refusing to read this trainer state, a pickle that asks for more than plain data "
            f"({reason}) and could run code; to continue from this checkpoint's weights without its "
            f"optimizer state, train with model.checkpoint={path.parent}"
        ) from None
