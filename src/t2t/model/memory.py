"""Memory a device has free, so that work too large for it is refused with one clear line before
anything is allocated (rather than an allocator's traceback, or a machine brought to its knees)."""

from __future__ import annotations

import os

import torch

from t2t.errors import ConfigError

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def available_bytes(device: torch.device | str) -> int | None:
    """Free memory on `device`: the GPU's free memory, or the host's available RAM for the CPU; None
    where it is not known (MPS, meta), which skips the checks."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        return _host_available()
    return None


def _host_available() -> int | None:
    """Linux's MemAvailable (free RAM plus what the page cache would give back), else all the RAM."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(count: float) -> str:
    """1536 -> '1.5 KB' (decimal units, as free(1) -h and the allocators print sizes)."""
    for unit in _UNITS:
        if abs(count) < 1000 or unit == _UNITS[-1]:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.3g} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def check_fits(what: str, needed: int, device: torch.device | str, fix: str) -> None:
    """Refuse `what` when the `needed` bytes (an estimate, at least what it allocates) exceed what
    `device` has free: ConfigError with both sizes and `fix`."""
    available = available_bytes(device)
    if available is not None and needed > available:
        raise ConfigError(
            f"{what} needs about {format_bytes(needed)} of memory, but {torch.device(device)} has "
            f"{format_bytes(available)} free; {fix}"
        )


__all__ = ["available_bytes", "check_fits", "format_bytes"]
