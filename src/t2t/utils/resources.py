"""The files t2t ships inside the package: training configs and recipes (`configs/`) and the built-in
data (`data/builtin/`), found with importlib.resources so that an installed wheel has them too.

A checkout has `configs` and `data` at its top as links into src/t2t/resources, so the paths the docs
and the help examples use (`configs/finetune_multitask.yaml`, `data/builtin/quickstart/translate`)
work there as written; from any other directory such a relative path that does not exist is read from
the package (`shipped`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SHIPPED_TOP = ("configs", "data")


def resources_dir() -> Path:
    """src/t2t/resources of this installation (a real directory: t2t installs unzipped)."""
    return Path(str(files("t2t").joinpath("resources")))


def configs_dir() -> Path:
    return resources_dir() / "configs"


def builtin_dir() -> Path:
    return resources_dir() / "data" / "builtin"


def shipped(path: str | Path) -> Path:
    """`path` itself when it exists (or is absolute, or names nothing t2t ships); else the file of that
    name inside the package: `configs/X.yaml` -> resources/configs/X.yaml, `data/builtin/...` likewise."""
    path = Path(path)
    if path.exists() or path.is_absolute() or not path.parts or path.parts[0] not in SHIPPED_TOP:
        return path
    candidate = resources_dir().joinpath(*path.parts)
    return candidate if candidate.exists() else path
