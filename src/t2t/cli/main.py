"""Entry point of the `t2t` command. Subcommands are discovered from the modules of this package, so a
new command is one new file. Every user error becomes one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_USAGE = 2
_ORDER = [
    "quickstart",
    "tokenizer",
    "train",
    "generate",
    "eval",
    "convert",
    "inspect",
    "plot",
    "finetune",
    "demo",
]
# What to do about an OSError on a path the user gave (errno -> the fix), e.g. `--out` naming a file.
_OS_FIXES = {
    errno.EEXIST: "a file stands where a directory should be; pass another path or remove the file",
    errno.ENOTDIR: "a part of the path is a file, not a directory; pass another path",
    errno.EISDIR: "pass a file path",
    errno.ENOENT: "check the path",
    errno.EACCES: "pass a path you may read and write, or change its permissions",
    errno.EPERM: "pass a path you may read and write, or change its permissions",
    errno.EROFS: "the file system is read-only; write somewhere else",
    errno.ENOSPC: "the disk is full; free some space or write somewhere else",
    errno.ENAMETOOLONG: "shorten the path",
}


class _Parser(argparse.ArgumentParser):
    """argparse's errors as one line, like every other user error (argparse puts the usage first)."""

    def error(self, message: str):  # type: ignore[no-untyped-def]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]):  # type: ignore[no-untyped-def]
        """`--to=--` is the value "--" (Python 3.11's argparse drops it and hands the option [])."""
        if arg_strings == ["--"] and action.option_strings and action.nargs is None:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)


class _OneLineCommands(argparse.RawDescriptionHelpFormatter):
    """`t2t --help`: one line per subcommand whatever the terminal's width (argparse would wrap them)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=1000)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        # argparse measures the command names without their indent, so the longest one (quickstart)
        # would get its help on the next line
        for sub in self._iter_indented_subactions(action):
            length = len(self._format_action_invocation(sub)) + self._current_indent
            self._action_max_length = max(self._action_max_length, length)


def _command_modules() -> list:
    here = [str(Path(__file__).parent)]  # this package's folder (its __init__ need not be imported)
    names = [m.name for m in pkgutil.iter_modules(here) if not m.name.startswith("_")]
    names = [n for n in names if n not in ("main", "common")]
    names.sort(key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    return [importlib.import_module(f"t2t.cli.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="t2t",
        description="t2t: text-to-text transformers (T5, BERT, GPT-2, Llama) in PyTorch.",
        formatter_class=_OneLineCommands,
    )
    parser.add_argument("--version", action="version", version=f"t2t {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in _command_modules():
        module.register(sub)
    for command in sub.choices.values():
        _add_verbosity(command)
    return parser


def _add_verbosity(command: argparse.ArgumentParser) -> None:
    """--quiet / --verbose on every command (a command's own --quiet also turns off its progress bars)."""
    taken = {s for action in command._actions for s in action.option_strings}
    if "--quiet" not in taken:
        command.add_argument("--quiet", action="store_true", help="warnings and errors only")
    command.add_argument("--verbose", action="store_true", help="debug messages too")


def _version() -> str:
    from t2t.utils.version import version

    return version()


def main(argv: Sequence[str] | None = None) -> int:
    _print_any_path()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the command's own parser says it, so the line names the command as every other error
        command = _subcommand(parser, args)
        (command or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    from t2t.errors import T2TError
    from t2t.utils.log import configure_for_command

    configure_for_command(args.command, quiet=args.quiet, verbose=args.verbose)
    try:
        return int(args.handler(args) or 0)
    except T2TError as err:
        print(f"t2t {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"t2t {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `t2t inspect gpt2 --json | head`: the reader left; say nothing more and let Python not
        # complain again when it flushes stdout at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:
        if err.filename is None:  # not about a path (a socket, a device): a bug to see in full
            raise
        print(f"t2t {args.command}: error: {os_error_line(err)}", file=sys.stderr)
        return EXIT_USAGE


def _print_any_path() -> None:
    """A path given as bytes that are not UTF-8 (Python keeps them as surrogates) is printed back as
    those bytes, not a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if (
            reconfigure is not None
            and (getattr(stream, "encoding", "") or "").lower().replace("-", "") == "utf8"
        ):
            reconfigure(errors="surrogateescape")


def _subcommand(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, "command", None):
            return action.choices.get(args.command)
    return None


def os_error_line(err: OSError) -> str:
    """An OSError on a path as one line: which path, what went wrong, what to do."""
    where = f"{err.filename} -> {err.filename2}" if err.filename2 else str(err.filename)
    what = (err.strerror or type(err).__name__).lower()
    fix = _OS_FIXES.get(err.errno or 0)
    return f"{where}: {what}" + (f"; {fix}" if fix else "")


if __name__ == "__main__":
    sys.exit(main())
