"""Which torch device a name (a flag's or a recipe's value) means, checked against this machine, so a
typo or a missing GPU is one clear error before anything loads, in the CLI and the API alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from t2t.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(name: str, option: str = "--device ") -> torch.device:
    """The torch.device that `name` (a flag's value) names, checked against this machine, so a typo or
    a missing GPU is one line before anything loads. `option` says where the value came from in errors
    ("--device ", or "device=" for a recipe field)."""
    import torch  # not at import time: `t2t --help` stays quick

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ConfigError(f"{option}{name!r} is not a device; use cpu, cuda, cuda:N, mps or auto")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{option}{name}: CUDA is not available on this machine; use {option}cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ConfigError(f"{option}{name}: this machine has {count} CUDA device(s), cuda:0..{count - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"{option}{name}: MPS (Apple GPU) is not available on this machine; use {option}cpu"
        )
    return device
