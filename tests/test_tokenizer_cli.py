"""`t2t tokenizer train | encode | decode | info`, and its user errors: one line on stderr, exit 2."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from t2t.cli.main import build_parser, main
from t2t.tokenizer import load_tokenizer
from tokenizer_helpers import write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("cli") / "corpus.txt", lines=1500)


@pytest.fixture(scope="module")
def tok_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "tok"
    assert main(["tokenizer", "train", "--input", str(corpus), "--vocab-size", "300", "--out", str(out)]) == 0
    return out


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "t2t.cli.main", "tokenizer", *args],
        capture_output=True,
        text=True,
        input=stdin,
    )


def test_train_prints_a_summary(corpus, tmp_path, capsys):
    out = tmp_path / "tok"
    args = ["tokenizer", "train", "--input", str(corpus), "--input", str(corpus), "--vocab-size", "300"]
    assert main([*args, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "vocab_size        300" in text
    assert "model_vocab_size  384" in text
    assert "special ids       pad=0 eos=1 unk=2" in text
    assert "<extra_id_0>=299 .. <extra_id_99>=200" in text
    assert "tokens " in text and "ids " in text  # the sample encoding
    tok = load_tokenizer(out)
    assert (tok.kind, tok.vocab_size, tok.sentinel_id(0)) == ("sentencepiece", 300, 299)


@pytest.mark.parametrize(
    ("kind", "extra", "expect"),
    [
        ("wordpiece", [], "pad=0 unk=1 cls=2 sep=3 mask=4"),
        ("wordpiece", ["--cased"], "pad=0 unk=1 cls=2 sep=3 mask=4"),
        ("bpe", [], "eos=399 bos=399 unk=399"),
    ],
)
def test_train_other_kinds(corpus, tmp_path, capsys, kind, extra, expect):
    out = tmp_path / kind
    args = ["tokenizer", "train", "--input", str(corpus), "--vocab-size", "400", "--kind", kind, *extra]
    assert main([*args, "--out", str(out)]) == 0
    assert expect in capsys.readouterr().out
    tok = load_tokenizer(out)
    assert tok.kind == kind
    assert ("Hello" in tok.tokenize("Hello")) == ("--cased" in extra) or kind == "bpe"


def test_fewer_tokens_than_asked_is_reported(tmp_path, capsys):
    small = tmp_path / "small.txt"
    small.write_text("the cat sat on the mat\n" * 50, encoding="utf-8")
    assert (
        main(
            ["tokenizer", "train", "--input", str(small), "--vocab-size", "400", "--out", str(tmp_path / "t")]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fewer than --vocab-size 400" in out


def test_encode_decode_info(tok_dir, capsys):
    tok = load_tokenizer(tok_dir)
    assert (
        main(["tokenizer", "encode", "--tokenizer", str(tok_dir), "happy house <extra_id_0>", "--tokens"])
        == 0
    )
    ids_line, tokens_line = capsys.readouterr().out.splitlines()
    ids = [int(x) for x in ids_line.split()]
    assert ids == tok.encode("happy house <extra_id_0>")
    assert tokens_line.split()[-2:] == ["<extra_id_0>", "</s>"]
    assert main(["tokenizer", "decode", "--tokenizer", str(tok_dir), *map(str, ids)]) == 0
    assert capsys.readouterr().out == "happy house\n"
    assert (
        main(["tokenizer", "decode", "--tokenizer", str(tok_dir), "--keep-special-tokens", *map(str, ids)])
        == 0
    )
    assert capsys.readouterr().out == "happy house<extra_id_0></s>\n"
    assert main(["tokenizer", "info", "--tokenizer", str(tok_dir)]) == 0
    assert "sentencepiece (T5Tokenizer)" in capsys.readouterr().out


def test_encode_and_decode_read_stdin(tok_dir, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("house\nhappy dog\n"))
    assert main(["tokenizer", "encode", "--tokenizer", str(tok_dir), "--no-special-tokens"]) == 0
    encoded = capsys.readouterr().out
    lines = encoded.splitlines()
    assert len(lines) == 2 and all(lines)
    monkeypatch.setattr(sys, "stdin", io.StringIO(encoded))
    assert main(["tokenizer", "decode", "--tokenizer", str(tok_dir)]) == 0
    assert capsys.readouterr().out.splitlines() == ["house", "happy dog"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "--input", "{tmp}/missing.txt", "--vocab-size", "300", "--out", "{tmp}/o"],
            "missing.txt: no such file",
        ),
        (
            ["train", "--input", "{tmp}/latin1.txt", "--vocab-size", "300", "--out", "{tmp}/o"],
            "latin1.txt:2: not UTF-8",
        ),
        (
            ["train", "--input", "{corpus}", "--vocab-size", "50", "--out", "{tmp}/o"],
            "vocab_size=50 is too small",
        ),
        (
            ["train", "--input", "{corpus}", "--vocab-size", "110", "--out", "{tmp}/o"],
            "raise --vocab-size to at least",
        ),
        (
            ["train", "--input", "{corpus}", "--vocab-size", "20", "--kind", "wordpiece", "--out", "{tmp}/o"],
            "raise --vocab-size to at least",
        ),
        (
            ["train", "--input", "{corpus}", "--vocab-size", "200", "--kind", "bpe", "--out", "{tmp}/o"],
            "at least 258",
        ),
        (
            ["train", "--input", "{tmp}/empty.txt", "--vocab-size", "300", "--out", "{tmp}/o"],
            "no text to train on",
        ),
        (["encode", "--tokenizer", "{tmp}", "hello"], "no tokenizer files"),
        (["encode", "--tokenizer", "{tmp}/nowhere/tok", "hello"], "no such directory"),
        (["decode", "--tokenizer", "{tok}"], "<stdin>:1: ids should be integers"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, corpus, tok_dir, args, message, capsys, monkeypatch):
    (tmp_path / "latin1.txt").write_bytes("fine line\ncaf\xe9\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO("1 2 x\n"))
    args = [a.format(tmp=tmp_path, corpus=corpus, tok=tok_dir) for a in args]
    assert main(["tokenizer", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("t2t tokenizer: error: ")
    assert err.strip().count("\n") == 0, err
    assert message in err
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_a_user_error_from_the_real_command_has_no_traceback(tmp_path):
    proc = run_cli(
        "train", "--input", str(tmp_path / "missing.txt"), "--vocab-size", "300", "--out", str(tmp_path)
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "missing.txt: no such file" in proc.stderr


def test_every_action_help_ends_with_an_example():
    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command")
    tokenizer = sub.choices["tokenizer"]
    actions = next(a for a in tokenizer._subparsers._group_actions if a.dest == "action")
    assert set(actions.choices) == {"train", "encode", "decode", "info"}
    for name, action in actions.choices.items():
        last = action.format_help().rstrip().splitlines()[-1].strip()
        assert last.startswith("t2t tokenizer " + name), (name, last)


def test_bare_tokenizer_command_prints_help_and_exit_2(capsys):
    assert main(["tokenizer"]) == 2
    assert "train" in capsys.readouterr().out
