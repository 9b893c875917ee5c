"""Entry point of the `t2t` command. Subcommands are discovered from the modules of this package, so a
new command is one new file. Every user error becomes one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import t2t.cli as cli_package

EXIT_USAGE = 2
_ORDER = ["quickstart", "tokenizer", "train", "generate", "eval", "convert", "inspect", "plot", "demo"]


def _command_modules() -> list:
    names = [m.name for m in pkgutil.iter_modules(cli_package.__path__) if not m.name.startswith("_")]
    names = [n for n in names if n not in ("main", "common")]
    names.sort(key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    return [importlib.import_module(f"t2t.cli.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="t2t",
        description="t2t: text-to-text transformers (T5, BERT, GPT-2, Llama) in PyTorch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"t2t {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in _command_modules():
        module.register(sub)
    return parser


def _version() -> str:
    from t2t import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    from t2t.errors import T2TError

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


if __name__ == "__main__":
    sys.exit(main())
