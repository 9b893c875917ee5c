"""Atomic file writes: a reader never sees a half-written file, a crash never corrupts the old one.

A written file gets the permissions the user's umask gives a new file (0666 & ~umask, as open() does),
and a file written over keeps its own: tempfile.mkstemp's 0600 would make a shared checkpoint or an
answers file unreadable to the rest of a team.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from t2t.errors import ConfigError

_NEW_FILE_MODE = 0o666  # what open() asks for; the kernel takes the umask off


def _create_temp(path: Path) -> tuple[Path, int]:
    """A new empty file beside `path`, created as open() would create it, and its mode (the umask's)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE)
        except FileExistsError:
            continue
        try:
            return tmp, stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name}")


def _final_mode(path: Path, new_mode: int) -> int:
    """The mode `path` should have once written: its current one if it exists, else a new file's."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return new_mode


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync and rename it over `path` (keeping the
    mode of a file it replaces, else the umask's)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path, new_mode = _create_temp(path)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _final_mode(path, new_mode))  # a writer may have made the file anew
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Like open(path, mode) for writing, but the file appears only once it is complete."""
    binary = "b" in mode
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if binary else encoding) as fh:
        yield fh


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call writer(tmp_path) (for libraries that write to a path themselves), then move into place."""
    with atomic_path(path) as tmp:
        writer(tmp)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def unwritable(path: Path) -> str | None:
    """Why files cannot be made in directory `path` (made if missing), or None: the nearest folder that
    exists must be a directory we may write in (root may write anywhere but a read-only file system)."""
    nearest = path
    while not nearest.exists() and nearest.parent != nearest:
        nearest = nearest.parent
    if not nearest.is_dir():
        return f"{nearest} is a file, not a directory; give another path"
    if not os.access(nearest, os.W_OK | os.X_OK):
        return (
            f"{nearest} is not writable (permission denied); pass a path you may write to, or change "
            "its permissions"
        )
    return None


def user_path(path: str | Path) -> Path:
    """`~/x` and `~user/x` expanded; a `~name` of no such user is a ConfigError (pathlib raises a bare
    RuntimeError), not a traceback."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        raise ConfigError(
            f"{path}: {str(path).split('/')[0]} names no user here; give the path in full"
        ) from None
