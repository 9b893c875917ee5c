"""`t2t generate`: one prompt streamed, a JSONL file in batches, and each user error as one line + exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from generation_helpers import spread_weights, tiny_model_for, train_tokenizer
from t2t.cli.main import build_parser, main
from t2t.errors import T2TError
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
    for flag in ("--early-stopping", "--eos-token-id", "--pad-token-id", "--length-penalty-style"):
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


def test_beam_and_token_id_flags_reach_the_config(ckpt, monkeypatch, capsys):
    """--early-stopping, --eos-token-id and --pad-token-id are parsed and arrive in the config that
    each batch is generated with."""
    from t2t.cli.generate import decoding_options
    from t2t.generation import Pipeline

    def parse(*flags: str):
        return build_parser().parse_args(["generate", "--model", str(ckpt), "x", *flags])

    assert decoding_options(parse("--early-stopping", "never"))["early_stopping"] == "never"
    assert decoding_options(parse("--early-stopping", "False"))["early_stopping"] is False
    assert decoding_options(parse("--eos-token-id", "5, 9"))["eos_token_id"] == [5, 9]
    assert decoding_options(parse("--eos-token-id", "none"))["eos_token_id"] == []
    assert "eos_token_id" not in decoding_options(parse())  # unset: the model's own

    seen = []
    original = Pipeline.generate_batch

    def spy(self, ids, config):
        seen.append(config)
        return original(self, ids, config)

    monkeypatch.setattr(Pipeline, "generate_batch", spy)
    flags = ["--num-beams", "3", "--early-stopping", "true", "--eos-token-id", "7,8", "--pad-token-id", "2"]
    assert main(["generate", "--model", str(ckpt), "house", "--max-new-tokens", "4", *flags]) == 0
    (config,) = seen
    assert (config.early_stopping, config.eos_ids, config.pad_token_id) == (True, [7, 8], 2)
    assert capsys.readouterr().out.endswith("\n")


def test_eos_none_runs_to_the_length_limit(ckpt, pipe, capsys):
    args = ["generate", "--model", str(ckpt), "house", "--max-new-tokens", "12", "--eos-token-id", "none"]
    assert main(args) == 0
    expected = pipe("house", max_new_tokens=12, eos_token_id=[])
    assert capsys.readouterr().out == expected + "\n"
    new = pipe.model.generate([pipe.tokenizer.encode("house")], max_new_tokens=12, eos_token_id=[])[0, 1:]
    assert len(new) == 12 and pipe.tokenizer.decode(new.tolist()) == expected
    stopped = pipe("house", max_new_tokens=12, eos_token_id=int(new[0]))  # its first token as the eos
    assert stopped == "" and expected != ""


def test_temperature_is_ignored_without_sampling(ckpt, pipe, capsys):
    assert (
        main(["generate", "--model", str(ckpt), "house", "--max-new-tokens", "5", "--temperature", "0"]) == 0
    )
    assert capsys.readouterr().out == pipe("house", max_new_tokens=5) + "\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--shots", "-1"], "argument --shots: -1 should not be negative"),
        (["--shots", "two"], "argument --shots: 'two' is not an integer"),
        (
            ["--early-stopping", "maybe"],
            "argument --early-stopping: 'maybe' is not one of true, false, never",
        ),
        (["--eos-token-id", "5,x"], "argument --eos-token-id: 'x' is not an integer"),
        (["--pad-token-id", "-3"], "argument --pad-token-id: -3 should not be negative"),
    ],
)
def test_bad_flag_values_are_argparse_errors(ckpt, capsys, flags, message):
    with pytest.raises(SystemExit) as done:
        main(["generate", "--model", str(ckpt), "--task", "sentiment", *flags])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"t2t generate: error: {message}"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pad-token-id", "100000"], "pad_token_id=100000 is not a token id of this model (0 to"),
        (["--eos-token-id", "3,100000"], "eos_token_id=100000 is not a token id of this model (0 to"),
    ],
)
def test_token_ids_outside_the_vocabulary_are_one_line(ckpt, capsys, flags, message):
    assert main(["generate", "--model", str(ckpt), "house", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_one_prompt_is_written_and_flushed_piece_by_piece(ckpt, monkeypatch):
    """Streaming to the terminal: each piece is written and flushed before the next one is generated."""
    from t2t.generation import Pipeline

    events: list[tuple[str, str]] = []
    original = Pipeline.stream

    def spy(self, *args, **kwargs):
        for piece in original(self, *args, **kwargs):
            events.append(("made", piece))
            yield piece

    class Terminal:
        def write(self, text: str) -> int:
            events.append(("write", text))
            return len(text)

        def flush(self) -> None:
            events.append(("flush", ""))

    monkeypatch.setattr(Pipeline, "stream", spy)
    monkeypatch.setattr(sys, "stdout", Terminal())
    args = ["generate", "--model", str(ckpt), "summarize: data flows", "--max-new-tokens", "16"]
    assert main([*args, "--eos-token-id", "none"]) == 0
    made = [i for i, (kind, _) in enumerate(events) if kind == "made"]
    assert len(made) > 3, "a 16-token answer should come in several pieces"
    for here, following in zip(made, [*made[1:], len(events)]):
        between = events[here + 1 : following]
        assert ("write", events[here][1]) in between and between[-1] == ("flush", ""), between


def test_progress_is_reported_per_batch(ckpt, tmp_path, monkeypatch):
    import tqdm

    bars = []

    class Bar:
        def __init__(self, *args, **kwargs):
            self.total, self.updates = kwargs["total"], []
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n: int = 1) -> None:
            self.updates.append(n)

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    source = write_lines(tmp_path / "p.jsonl", *(json.dumps({"prompt": f"house {i}"}) for i in range(5)))
    assert (
        main(file_args(ckpt, source, tmp_path / "a.jsonl", "--batch-size", "2", "--max-new-tokens", "3")) == 0
    )
    (bar,) = bars
    assert bar.total == 5 and bar.updates == [2, 2, 1]


@pytest.mark.parametrize(
    ("failure", "status"),
    [(T2TError("batch 2 went wrong"), 2), (KeyboardInterrupt(), 130)],
    ids=["error", "interrupt"],
)
def test_an_existing_output_survives_a_failure_midway(ckpt, tmp_path, monkeypatch, capsys, failure, status):
    from t2t.generation import Pipeline

    calls = []
    original = Pipeline.generate_batch

    def second_batch_fails(self, ids, config):
        calls.append(len(ids))
        if len(calls) == 2:
            raise failure
        return original(self, ids, config)

    monkeypatch.setattr(Pipeline, "generate_batch", second_batch_fails)
    source = write_lines(tmp_path / "p.jsonl", *(json.dumps({"prompt": f"house {i}"}) for i in range(5)))
    out = tmp_path / "answers.jsonl"
    out.write_text("old answers\n")
    assert main(file_args(ckpt, source, out, "--batch-size", "2", "--max-new-tokens", "3")) == status
    assert calls == [2, 2]  # the first batch was answered, the second failed
    assert out.read_text() == "old answers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl", "p.jsonl"]  # no temp file left
    capsys.readouterr()


def test_an_existing_output_survives_a_failed_write(ckpt, tmp_path, monkeypatch, capsys):
    """The answers are written to a temporary file and renamed over the old one: a failure while writing
    (here: the disk is full at fsync) leaves the old file whole and is one line, not a traceback."""
    import t2t.utils.io as io_module

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io_module.os, "fsync", full)
    source = write_lines(tmp_path / "p.jsonl", json.dumps({"prompt": "house"}))
    out = tmp_path / "answers.jsonl"
    out.write_text("old answers\n")
    assert main(file_args(ckpt, source, out, "--max-new-tokens", "3")) == 2
    err = capsys.readouterr().err
    assert "answers.jsonl: cannot write the answers (No space left on device)" in err
    assert len(err.strip().splitlines()) == 1
    assert out.read_text() == "old answers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.jsonl", "p.jsonl"]
