"""Argument types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse

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


def resolve_device(name: str):  # type: ignore[no-untyped-def]
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise T2TError(f"--device {name!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise T2TError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def example_epilog(*lines: str) -> str:
    """The 'example:' block every subcommand's help ends with."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines)
