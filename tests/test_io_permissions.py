"""Files t2t writes get the permissions the user's umask gives (not tempfile's 0600), and a file written
over keeps its own mode, so a teammate can still read a shared checkpoint or answers file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from t2t.config import ModelConfig
from t2t.utils.io import atomic_open, atomic_write_text, atomic_write_with

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture
def umask():
    """Set a umask for the test and put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600), (0o027, 0o640)])
def test_a_new_file_gets_the_umasks_mode(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_open(tmp_path / "b.bin", "wb") as fh:
        fh.write(b"x")
    atomic_write_with(tmp_path / "c.bin", lambda p: p.write_bytes(b"x"))
    ModelConfig().save(tmp_path / "model.yaml")
    for name in ("a.txt", "b.bin", "c.bin", "model.yaml"):
        assert _mode(tmp_path / name) == expected, name


def test_a_file_written_over_keeps_its_mode(tmp_path, umask):
    umask(0o077)  # would give 0600 to a new file
    for mode in (0o644, 0o664, 0o640, 0o444):
        path = tmp_path / f"shared-{mode:o}.jsonl"
        path.write_text("old\n")
        os.chmod(path, mode)
        atomic_write_text(path, "new\n")
        assert path.read_text() == "new\n"
        assert _mode(path) == mode


def test_a_writer_that_makes_the_file_anew_still_gets_the_right_mode(tmp_path, umask):
    umask(0o022)

    def replace_it(tmp: Path) -> None:  # as a library that unlinks and creates its output would
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x")
        os.close(fd)

    atomic_write_with(tmp_path / "lib.bin", replace_it)
    assert _mode(tmp_path / "lib.bin") == 0o644
    existing = tmp_path / "kept.bin"
    existing.write_bytes(b"old")
    os.chmod(existing, 0o664)
    atomic_write_with(existing, replace_it)
    assert _mode(existing) == 0o664 and existing.read_bytes() == b"x"


def test_no_temporary_file_is_left_behind(tmp_path, umask):
    atomic_write_text(tmp_path / "a.txt", "x")
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "b.txt") as fh:
        fh.write("half")
        raise RuntimeError("the writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
