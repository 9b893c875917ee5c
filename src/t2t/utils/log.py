"""Library messages go to the `t2t` logger (`t2t.train`, `t2t.tokenizer`, ...), never to print:
an application decides where they go. The t2t command shows them on stderr as `t2t COMMAND: ...`
(`--quiet`: warnings only; `--verbose`: debug too); a script sees warnings through Python's default
handler and may call `logging.basicConfig(level=logging.INFO)` for the rest."""

from __future__ import annotations

import logging
import sys

ROOT = "t2t"


def logger(name: str) -> logging.Logger:
    """The logger of a part of t2t: logger("train") is `t2t.train`."""
    return logging.getLogger(f"{ROOT}.{name}" if name else ROOT)


class _CommandFormatter(logging.Formatter):
    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"t2t {self.command}: {level}{record.getMessage()}"


class _Stderr(logging.Handler):
    """Writes to whatever sys.stderr is when the message comes (tests and tools swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def configure_for_command(command: str, *, quiet: bool = False, verbose: bool = False) -> None:
    """One stderr line per message, prefixed as every other line of the command."""
    root = logging.getLogger(ROOT)
    for handler in list(root.handlers):
        if getattr(handler, "_t2t_command", False):
            root.removeHandler(handler)
    handler = _Stderr()
    handler._t2t_command = True  # type: ignore[attr-defined]
    handler.setFormatter(_CommandFormatter(command))
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
