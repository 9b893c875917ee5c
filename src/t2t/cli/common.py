"""Argument types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from t2t.errors import ConfigError
from t2t.utils.devices import DEVICE_TYPES, resolve_device
from t2t.utils.io import unwritable

__all__ = ["DEVICE_TYPES", "resolve_device"]

# torch's int64 (sys.maxsize on 64-bit machines): a larger count, size or id cannot reach a tensor,
# so a flag refuses it at once
MAX_INT = sys.maxsize


def int_at_least(least: int, most: int = MAX_INT):  # type: ignore[no-untyped-def]
    """An argparse type: an integer from `least` to `most`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < least:
            raise argparse.ArgumentTypeError(
                f"{value} should not be negative" if least == 0 else f"{value} should be at least {least}"
            )
        if value > most:
            raise argparse.ArgumentTypeError(f"{value} is too large (at most {most})")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
any_int = int_at_least(-MAX_INT - 1)


def finite_float(text: str) -> float:
    """An argparse type: a number that is not NaN or infinite (neither means anything as a setting)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; give one like 0.5")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} should not be negative")
    return value


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (cuda when available, else cpu)"
    )


def check_output_dir(path: str | Path, option: str) -> Path:
    """Refuse an output directory that cannot be made or written (it, or a folder above it, is a file;
    no write permission) before any work is done, rather than failing at the end when the results are
    written. `option` is how the user gave it ("--out " or "output_dir=")."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{option}{path}: file exists; a file stands where a directory should be (it is a file); "
            "pass a directory path (it is created if missing)"
        )
    problem = unwritable(path)
    if problem:
        raise ConfigError(f"{option}{path}: {problem}")
    return path


def check_new_dir(path: str | Path, option: str, overwrite: bool) -> Path:
    """check_output_dir, and refuse a directory that holds files unless `overwrite`: writing into it
    would mix the new files with old ones (a tokenizer beside a model of another vocabulary)."""
    path = check_output_dir(path, option)
    if not overwrite and path.is_dir() and any(path.iterdir()):
        raise ConfigError(f"{option}{path} exists and is not empty; pick a new directory or pass --overwrite")
    return path


def check_output_file(path: str | Path, option: str) -> Path:
    """A file to write: not a directory, in a directory that can be made and written."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option}{path} is a directory; give a file path")
    problem = unwritable(path.parent)
    if problem:
        raise ConfigError(f"{option}{path}: {problem}")
    return path


@contextlib.contextmanager
def warnings_as_lines(command: str, every: bool = True) -> Iterator[None]:
    """Warnings (a prompt cut to fit, a line skipped) as one stderr line each, as they happen; `every`:
    repeats too (each prompt cut), else Python's default of once per place in the code."""

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        print(f"t2t {command}: warning: {message}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        if every:
            warnings.simplefilter("always")
        warnings.showwarning = show
        yield


def example_epilog(*lines: str) -> str:
    """The 'example:' block every subcommand's help ends with."""
    return "example:\n" + "\n".join(f"  {line}" for line in lines)
