"""`t2t --help` lists every subcommand on one line; every subcommand's help ends with an example, and the
examples run as written (in a fresh folder that has the checkout's configs/ and data/)."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from t2t.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["quickstart", "tokenizer", "train", "generate", "eval", "convert", "inspect", "plot", "finetune"]
SHELL = {"&&", "||", "|", ">", ">>", ";"}  # a line with these runs in bash, not through main()
NOT_YET_RUNNABLE: dict[str, str] = {}  # command -> why its example cannot run yet (strict xfail)
# Lines not run: a multi-process torchrun, and the full quickstart (test_quickstart.py runs --fast).
SKIPPED = ("torchrun ", "t2t quickstart")


def _commands_action() -> argparse._SubParsersAction:
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return dict(_commands_action().choices)


def example_lines(command: str) -> list[str]:
    text = subcommands()[command].format_help()
    assert "\nexample:\n" in text, f"t2t {command} --help has no example"
    return [line.strip() for line in text.split("\nexample:\n", 1)[1].splitlines() if line.strip()]


def test_top_level_help_lists_each_command_on_one_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal: argparse would wrap the descriptions
    text = build_parser().format_help()
    choices = subcommands()
    helps = {a.dest: a.help for a in _commands_action()._choices_actions}
    assert set(COMMANDS) <= set(choices)
    for name in choices:
        lines = [line for line in text.splitlines() if line.split()[:1] == [name]]
        assert len(lines) == 1, f"{name!r} is on {len(lines)} lines of t2t --help"
        assert lines[0].rstrip().endswith(helps[name]), lines[0]  # its description whole, on that line
    listed = [
        line.split()[0] for line in text.split("commands:", 1)[1].splitlines() if line.startswith("    ")
    ]
    assert listed[: len(COMMANDS)] == COMMANDS  # in the order of the issue, the extra ones after


def test_bare_t2t_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "quickstart" in capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_command_help_ends_with_an_example(command):
    lines = example_lines(command)
    assert lines and any(line.startswith(f"t2t {command}") for line in lines)


def _stand_in_quickstart_model(directory: Path) -> None:
    """What `t2t quickstart --fast --out qs` leaves in qs/model (a T5 and its sentencepiece), tiny, and
    made to answer at once (an empty answer: the decoder's layers add nothing and EOS lines up with the
    start token), so the eval lines cost prompts, not 64 random tokens each."""
    import torch

    from generation_helpers import tiny_model_for, train_tokenizer

    directory.mkdir(parents=True)
    tokenizer = train_tokenizer(directory.parent, "sentencepiece", 300)
    model = tiny_model_for(tokenizer, "encoder-decoder")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("decoder.layers"):
                param.zero_()
        model.embed.weight[tokenizer.eos_id] = 3 * model.embed.weight[model.config.decoder_start_id]
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def _run(line: str, cwd: Path) -> None:
    words = shlex.split(line, comments=True)
    if words[0] == "t2t" and not SHELL & set(words):  # in this process: no start-up time
        code = main(words[1:])
        assert code == 0, f"{line!r} exited {code}"
        return
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{line!r} exited {proc.returncode}: {proc.stderr[-2000:]}"


RUNNABLE = [c for c in [*COMMANDS, "demo"] if c != "quickstart"]
SLOW = {
    "eval",
    "finetune",
    "generate",
    "inspect",
    "plot",
    "train",
}  # over 5 s here (subprocesses, training)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            c,
            marks=[
                *([pytest.mark.slow] if c in SLOW else []),
                *(
                    [pytest.mark.xfail(strict=True, reason=NOT_YET_RUNNABLE[c])]
                    if c in NOT_YET_RUNNABLE
                    else []
                ),
            ],
        )
        for c in RUNNABLE
    ],
)
def test_examples_run_as_written(command, tmp_path, monkeypatch, capsys):
    for shared in ("configs", "data"):
        (tmp_path / shared).symlink_to(ROOT / shared)
    monkeypatch.chdir(tmp_path)
    lines = [line for line in example_lines(command) if not line.startswith(SKIPPED)]
    if command == "eval":
        assert example_lines("eval")[0] == "t2t quickstart --fast --out qs"
        _stand_in_quickstart_model(tmp_path / "qs" / "model")
    if command == "plot":  # plot draws the run that train's example makes
        lines = [line for line in example_lines("train") if not line.startswith(SKIPPED)] + lines
    for line in lines:
        _run(line, tmp_path)
    capsys.readouterr()
