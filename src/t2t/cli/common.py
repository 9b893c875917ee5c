"""Argument types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2t.errors import T2TError
from t2t.utils.devices import DEVICE_TYPES, resolve_device

__all__ = ["DEVICE_TYPES", "resolve_device"]


def int_at_least(least: int):  # type: ignore[no-untyped-def]
    """An argparse type: an integer no smaller than `least`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < least:
            raise argparse.ArgumentTypeError(
                f"{value} should not be negative" if least == 0 else f"{value} should be at least {least}"
            )
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


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
