"""`t2t generate`: one prompt streamed, a JSONL file in batches, and each user error as one line + exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from generation_helpers import spread_weights, tiny_model_for, train_tokenizer
from t2t.cli.main import build_parser, main
from t2t.generation import load_pipeline


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ckpt")
    tokenizer = train_tokenizer(directory, "sentencepiece", 400)
    model = tiny_model_for(tokenizer, "encoder-decoder")
    spread_weights(model, 1)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def pipe(ckpt):
    return load_pipeline(ckpt)


def file_args(ckpt, source, out, *extra: str) -> list[str]:
    return ["generate", "--model", str(ckpt), "--input", str(source), "--output", str(out), *extra]


def write_lines(path, *lines: str):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_one_prompt_is_streamed_to_stdout(ckpt, pipe, capsys):
    assert (
        main(
            ["generate", "--model", str(ckpt), "translate English to German: house", "--max-new-tokens", "9"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out == pipe("translate English to German: house", max_new_tokens=9) + "\n"


def test_decoding_flags_reach_the_model(ckpt, pipe, capsys):
    args = [
        "--num-beams",
        "3",
        "--max-new-tokens",
        "7",
        "--length-penalty",
        "0.6",
        "--length-penalty-style",
        "gnmt",
    ]
    assert main(["generate", "--model", str(ckpt), "summarize: data flows", *args]) == 0
    expected = pipe(
        "summarize: data flows",
        num_beams=3,
        max_new_tokens=7,
        length_penalty=0.6,
        length_penalty_style="gnmt",
    )
    assert capsys.readouterr().out == expected + "\n"
    sample = [
        "--do-sample",
        "--seed",
        "3",
        "--top-k",
        "5",
        "--temperature",
        "0.7",
        "--num-return-sequences",
        "2",
    ]
    assert main(["generate", "--model", str(ckpt), "question: where", *sample]) == 0
    expected = pipe(
        "question: where",
        do_sample=True,
        seed=3,
        top_k=5,
        temperature=0.7,
        num_return_sequences=2,
        max_new_tokens=64,
    )
    assert capsys.readouterr().out == "".join(a + "\n" for a in expected)


def test_a_jsonl_file_is_answered_in_order(ckpt, pipe, tmp_path, capsys):
    prompts = [
        "translate English to German: house",
        "a",
        "summarize: the quick brown fox jumps over a lazy dog",
        "Zürich",
    ]
    source = write_lines(
        tmp_path / "prompts.jsonl",
        json.dumps({"prompt": prompts[0], "id": 1}),
        json.dumps(prompts[1]),
        "",
        json.dumps({"inputs": prompts[2], "targets": "ignored"}),
        json.dumps({"prompt": prompts[3]}, ensure_ascii=False),
    )
    out = tmp_path / "answers.jsonl"
    args = file_args(ckpt, source, out, "--batch-size", "2")
    assert main([*args, "--max-new-tokens", "6"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r.get("prompt", r.get("inputs")) for r in records] == prompts
    assert records[0]["id"] == 1 and records[2]["targets"] == "ignored"
    assert [r["output"] for r in records] == pipe(prompts, max_new_tokens=6)
    assert any(r["output"] for r in records)
    assert "4 answers written" in capsys.readouterr().err


def test_without_output_the_answers_go_to_stdout(ckpt, tmp_path, capsys):
    source = write_lines(tmp_path / "p.jsonl", json.dumps({"prompt": "house"}))
    assert main(["generate", "--model", str(ckpt), "--input", str(source), "--max-new-tokens", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["prompt"] == "house"


BAD_LINES = [
    (['{"prompt": "house"}', '{"prompt": ""}'], r"p\.jsonl:2: the prompt is empty"),
    (['{"prompt": "house"}', "", '{"prompt": "x"'], r"p\.jsonl:3: not valid JSON"),
    (['{"text": "house"}'], r'p\.jsonl:1: no "prompt" \(or "inputs"\) field; found \'text\''),
    (['{"prompt": 5}'], r'p\.jsonl:1: "prompt" should be a string, got int'),
    (["[1, 2]"], r"p\.jsonl:1: expected an object"),
    ([""], r"p\.jsonl: no prompts in the file"),
]


@pytest.mark.parametrize(("lines", "message"), BAD_LINES)
def test_a_bad_line_is_named_and_nothing_is_written(ckpt, tmp_path, capsys, lines, message):
    source = write_lines(tmp_path / "p.jsonl", *lines)
    out = tmp_path / "answers.jsonl"
    out.write_text("old answers\n")
    assert main(file_args(ckpt, source, out)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("t2t generate: error: ")
    assert re.search(message, err)
    assert out.read_text() == "old answers\n"  # untouched: the output is written whole or not at all


def test_a_long_prompt_is_cut_with_a_warning_or_refused(ckpt, tmp_path, capsys):
    long = " ".join(["the quick brown fox"] * 300)
    source = write_lines(tmp_path / "p.jsonl", json.dumps({"prompt": "house"}), json.dumps({"prompt": long}))
    out = tmp_path / "answers.jsonl"
    args = file_args(ckpt, source, out, "--max-new-tokens", "3")
    assert main(args) == 0
    err = capsys.readouterr().err
    assert (
        "t2t generate: warning: " in err
        and "p.jsonl:2: the prompt has" in err
        and "kept the first 512" in err
    )
    assert len(out.read_text().splitlines()) == 2
    out.unlink()
    assert main([*args, "--no-truncate"]) == 2
    err = capsys.readouterr().err
    assert "t2t generate: error: " in err and "p.jsonl:2: the prompt has" in err and not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["house", "--input", "x.jsonl"], "give one prompt"),
        ([], "give one prompt"),
        (["house", "--output", "a.jsonl"], "--output goes with --input"),
        (["--input", "missing.jsonl"], "missing.jsonl: no such file"),
        ([""], "prompt: the prompt is empty"),
        (["house", "--temperature", "0", "--do-sample"], "temperature=0.0 must be > 0"),
    ],
)
def test_usage_errors_are_one_line(ckpt, capsys, extra, message):
    assert main(["generate", "--model", str(ckpt), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_help_ends_with_a_runnable_example():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["generate"].format_help()
    assert (
        text.rstrip().splitlines()[-1].strip().startswith("t2t generate --model ckpt --input prompts.jsonl")
    )
    for flag in ("--num-beams", "--max-new-tokens", "--do-sample", "--temperature", "--top-k", "--top-p"):
        assert flag in text
    for flag in ("--seed", "--batch-size", "--device", "--no-truncate", "--input", "--output"):
        assert flag in text


@pytest.mark.slow
def test_the_installed_command_streams_an_answer(ckpt, pipe):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "t2t.cli.main",
            "generate",
            "--model",
            str(ckpt),
            "house",
            "--max-new-tokens",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == pipe("house", max_new_tokens=5) + "\n"
