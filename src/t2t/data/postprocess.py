"""Named postprocessors: what a task does to a prediction (and its targets) before the metrics compare
them. Python tasks may pass any callable; YAML declarations name one of these, or a list of them
applied in order (`postprocess: [first_line, lower]`).

| name | does |
| --- | --- |
| `strip` | whitespace off both ends (every task's default) |
| `lower` | lower case, stripped |
| `first_word` | the first whitespace-separated word (`""` when there is none) |
| `first_line` | the first line, stripped |
| `strip_punctuation` | punctuation and whitespace off both ends (`"positive."` -> `"positive"`) |
| `none` | the text unchanged |
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from typing import Any

from t2t.configbase import closest
from t2t.errors import ConfigError

Postprocess = Callable[[str], Any]


def strip(text: str) -> str:
    return text.strip()


def lower(text: str) -> str:
    return text.strip().lower()


def first_word(text: str) -> str:
    words = text.split(maxsplit=1)
    return words[0] if words else ""


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def strip_punctuation(text: str) -> str:
    return text.strip(string.punctuation + string.whitespace)


def unchanged(text: str) -> str:
    return text


POSTPROCESSORS: dict[str, Postprocess] = {
    "strip": strip,
    "lower": lower,
    "first_word": first_word,
    "first_line": first_line,
    "strip_punctuation": strip_punctuation,
    "none": unchanged,
}


class _Chain:
    """Named postprocessors applied in order (a class, not a closure, so that a Task still pickles)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.steps = [POSTPROCESSORS[name] for name in names]

    def __call__(self, text: str) -> Any:
        for step in self.steps:
            text = step(text)
        return text

    def __repr__(self) -> str:
        return f"postprocess{self.names}"


def named_postprocess(spec: str | Sequence[str], where: str = "postprocess") -> Postprocess:
    """The postprocessor a name (or a list of names, applied in order) stands for; an unknown name is
    a ConfigError with the closest known one."""
    names = [spec] if isinstance(spec, str) else spec
    if not isinstance(names, Sequence) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(
            f"{where}: postprocess should be a name or a list of names of {', '.join(POSTPROCESSORS)}, got {spec!r}"
        )
    for name in names:
        if name not in POSTPROCESSORS:
            raise ConfigError(
                f"{where}: unknown postprocess {name!r}{closest(name, POSTPROCESSORS)}; "
                f"known: {', '.join(POSTPROCESSORS)}"
            )
    return POSTPROCESSORS[names[0]] if len(names) == 1 else _Chain(names)
