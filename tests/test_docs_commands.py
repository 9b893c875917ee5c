"""Every `t2t ...` command written in a fenced code block of README.md and docs/**/*.md is one that t2t's
own parser accepts: the subcommand exists, every option is one it has, with a value of the right type or
choice. The commands are parsed, never run (most of them train models). Where a command carries
`key=value` overrides (train, finetune, experiment), the config is built as the command builds it, so a
renamed or misspelt key fails here rather than in a reader's terminal.

Lines that are synopses (`t2t train --config RECIPE.yaml [--resume] [KEY=VALUE ...]`) rather than commands
are skipped, each with its reason."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from t2t.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PROGRAMS = ("t2t", ".venv/bin/t2t")
FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")
COMMENT = re.compile(r"(^|\s)#.*$")
LIST_VALUE = re.compile(r"=\[[^\]\s]*\]")  # peft.target=[q,v]: a YAML list, not an optional part
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")  # OMP_NUM_THREADS=1 t2t ...
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]+(\.[a-z]+)?$")  # DIR, NAME, RECIPE.yaml
# What makes a line a synopsis, looked for outside quoted text (a prompt may hold `<extra_id_0>` or `...`).
SYNOPSIS = (
    ("[", "an optional part in brackets"),
    ("]", "an optional part in brackets"),
    ("{", "a choice of words in braces"),
    ("|", "alternatives (or a pipe)"),
    ("...", "an ellipsis"),
    ("<", "a <placeholder> (or a redirection)"),
    ("$", "a shell variable"),
    ("*", "a glob"),
    ("?", "a glob"),
)


def _fenced_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each line inside a fenced code block, backslash continuations joined."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[tuple[int, str]] = []
    fence: str | None = None
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        match = FENCE.match(stripped)
        if match and fence is None:
            fence = match.group(1)
        elif match and fence is not None and stripped.startswith(fence) and not match.group(2).strip():
            fence = None
        elif fence is not None:
            start, text = i + 1, stripped
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1].rstrip() + " " + lines[i].strip()
            out.append((start, text))
        i += 1
    return out


def _commands(text: str) -> list[list[str]]:
    """The t2t commands of a shell line (`a && t2t b`, `VAR=1 t2t c`), each as its argv (after `t2t`)."""
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
    except ValueError:  # an unclosed quote: not shell
        return []
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token in ("&&", ";", "&"):
            segments.append([])
        else:
            segments[-1].append(token)
    found = []
    for segment in segments:
        while segment and ENV_ASSIGNMENT.match(segment[0]):
            segment = segment[1:]
        if segment and segment[0] in PROGRAMS:
            found.append(segment[1:])
    return found


def _synopsis(text: str) -> str | None:
    """Why the line is a synopsis rather than a command, or None."""
    bare = COMMENT.sub("", QUOTED.sub('""', text))
    bare = LIST_VALUE.sub("=list", bare)
    for marker, reason in SYNOPSIS:
        if marker in bare:
            return f"synopsis: {reason} ({marker!r})"
    for word in bare.split():
        if PLACEHOLDER.match(word.rpartition("=")[2]):
            return f"synopsis: the placeholder {word}"
    return None


def _doc_commands() -> list[Any]:
    params = []
    for path in DOCS:
        for number, text in _fenced_lines(path):
            where = f"{path.relative_to(ROOT)}:{number}"
            for argv in _commands(text):
                reason = _synopsis(text)
                marks = [pytest.mark.skip(reason=reason)] if reason else []
                params.append(pytest.param(argv, id=where, marks=marks))
    return params


DOC_COMMANDS = _doc_commands()


@functools.cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


def _parse(argv: list[str]) -> argparse.Namespace:
    """What `t2t.cli.main.main` parses; its error line (argparse exits 2) is the failure message."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            args, unknown = _parser().parse_known_args(argv)
    except SystemExit as stop:
        args, unknown = None, [f"exit {stop.code}: {stderr.getvalue().strip()}"]
    if args is None or unknown:
        pytest.fail(f"t2t {shlex.join(argv)}: {' '.join(unknown)}")
    if not getattr(args, "handler", None):
        pytest.fail(f"t2t {shlex.join(argv)}: no subcommand")
    return args


def _option_strings(argv: list[str]) -> set[str]:
    """The options of the parsers on the command's path (t2t, then tokenizer, then train, ...)."""
    parser, rest, options = _parser(), list(argv), set()
    while True:
        options |= {s for action in parser._actions for s in action.option_strings}
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = next((token for token in rest if not token.startswith("-")), None)
        if sub is None or name not in sub.choices:
            return options
        parser, rest = sub.choices[name], rest[rest.index(name) + 1 :]


def _check_spelling(argv: list[str]) -> None:
    """argparse takes `--resum` for `--resume`; the docs spell every option out (a prefix stops working
    the day another option starts with it)."""
    options = _option_strings(argv)
    for token in argv:
        if token == "--":
            break
        option = token.partition("=")[0]
        if option.startswith("--") and option not in options:
            pytest.fail(f"t2t {shlex.join(argv)}: {option} is not spelt out as the command names it")


def _known_keys(config: Any, overrides: list[str]) -> None:
    """Without the config file (a copy the reader makes), each dotted key must name a field, as
    StrictConfig.with_overrides looks them up."""
    from t2t.errors import ConfigError

    data = config().to_dict()
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} should look like key=value")
        node = data
        for part in key.strip().split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"unknown key {key.strip()!r} of {config.__name__}")
            node = node[part]


def _check_config(args: argparse.Namespace) -> None:
    """Build the config as the command's handler does, without training (ConfigError if it cannot)."""
    from t2t.train import TrainConfig
    from t2t.utils.resources import shipped

    if args.command == "train":
        if not shipped(args.config).is_file():
            _known_keys(TrainConfig, args.overrides)
            return
        cfg = TrainConfig.load(args.config).with_overrides(args.overrides)
        if args.resume:
            cfg = cfg.replace(resume=True)
        if args.overwrite:
            cfg = cfg.replace(overwrite=True)
    elif args.command == "finetune" and args.recipe:
        from t2t.finetune.recipe import legacy_override
        from t2t.train.recipes import load_recipe

        name, *overrides = args.recipe
        overrides = [*args.overrides, *overrides]
        if name.endswith((".yaml", ".yml")) and not shipped(name).is_file():  # the reader's own copy
            _known_keys(TrainConfig, [new for item in overrides for new in legacy_override(item)])
            return
        flags = [f"{key}=true" for key in ("resume", "overwrite") if getattr(args, key)]
        load_recipe(name, [*overrides, *flags, *(["progress=false"] if args.quiet else [])])
    elif args.command == "experiment" and args.name:
        from t2t.errors import ConfigError
        from t2t.experiments import load_spec
        from t2t.experiments.spec import ExperimentSpec

        if args.name.endswith((".yaml", ".yml")) and not Path(args.name).is_file():
            for item in args.overrides:  # a copy of a shipped experiment: its top-level keys
                if item.partition("=")[0].split(".")[0].strip() not in ExperimentSpec.field_names():
                    raise ConfigError(f"unknown key {item.partition('=')[0]!r} of an experiment")
            return
        load_spec(args.name, quick=args.quick, overrides=args.overrides)


def test_the_docs_hold_commands_to_check():
    checked = [p for p in DOC_COMMANDS if not p.marks]
    assert len(checked) >= 40, f"only {len(checked)} t2t commands found in the docs' code blocks"


@pytest.mark.parametrize("argv", DOC_COMMANDS)
def test_documented_command_parses(argv, monkeypatch):
    from t2t.errors import ConfigError

    monkeypatch.chdir(ROOT)  # the docs' relative paths (configs/...) are the checkout's
    args = _parse(argv)
    _check_spelling(argv)
    try:
        _check_config(args)
        problem = None
    except ConfigError as err:
        problem = str(err)
    if problem:
        pytest.fail(f"t2t {shlex.join(argv)}: {problem}")
