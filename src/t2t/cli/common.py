"""Argument types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2t.errors import T2TError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} should be at least 1")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} should not be negative")
    return value


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (cuda when available, else cpu)"
    )


DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(name: str, option: str = "--device "):  # type: ignore[no-untyped-def]
    """The torch.device that `name` (a flag's value) names, checked against this machine, so a typo or
    a missing GPU is one line before anything loads. `option` says where the value came from in errors
    ("--device ", or "device=" for a recipe field)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise T2TError(f"{option}{name!r} is not a device; use cpu, cuda, cuda:N, mps or auto")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise T2TError(f"{option}{name}: CUDA is not available on this machine; use {option}cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise T2TError(f"{option}{name}: this machine has {count} CUDA device(s), cuda:0..{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise T2TError(f"{option}{name}: MPS (Apple GPU) is not available on this machine; use {option}cpu")
    return device


def check_output_dir(path: str | Path, option: str) -> Path:
    """Refuse an output directory that cannot be made (it, or a folder above it, is a file) before any
    work is done, rather than failing at the end when the results are written. `option` is how the
    user gave it ("--out " or "output_dir=")."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise T2TError(f"{option}{path} is a file; give a directory (it is created if missing)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise T2TError(f"{option}{path}: {parent} is a file, not a directory; give another path")
            break
    return path


def example_epilog(*lines: str) -> str:
    """The 'example:' block every subcommand's help ends with."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines)
