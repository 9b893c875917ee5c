"""t2t's version, in one place: the installed package's metadata (pyproject.toml's `version`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _installed


def version() -> str:
    try:
        return _installed("t2t")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
