"""Inputs a new user tried that the CLI took badly: NaN and infinite decoding flags, absurd sizes, a
metrics.jsonl with stray lines, read-only output folders, a tokenizer trained over a model's folder,
unknown ids to decode, checkpoints of NaN weights or with an edited config. Each is one line and exit 2
(or, for plot's stray lines, a warning), and each comes before the expensive work where it can."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from generation_helpers import tiny_model_for, train_tokenizer
from t2t.cli.common import MAX_INT, finite_float, int_at_least, non_negative_float, positive_int
from t2t.cli.main import main

from helpers import one_line_error


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5 (Hugging Face layout) with its sentencepiece tokenizer, 300 tokens."""
    directory = tmp_path_factory.mktemp("ckpt")
    tokenizer = train_tokenizer(directory, "sentencepiece", 300)
    tiny_model_for(tokenizer, "encoder-decoder").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder no one may write in (mode 0555). Root writes anyway, so when the tests run as root
    os.access is made to say what it says to other users."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        real = os.access

        def access(path, mode, *args, **kwargs):  # type: ignore[no-untyped-def]
            if Path(path).resolve() == folder.resolve() and mode & os.W_OK:
                return False
            return real(path, mode, *args, **kwargs)

        monkeypatch.setattr(os, "access", access)
    yield folder
    folder.chmod(0o755)


# ---- 1. NaN and infinity in float flags --------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "infinity"])
@pytest.mark.parametrize("flag", ["--length-penalty", "--temperature", "--top-p", "--repetition-penalty"])
def test_generate_float_flags_refuse_nan_and_inf(capsys, flag, value):
    # --model does not exist: the flag is refused first, before anything loads
    line = one_line_error(capsys, ["generate", "--model", "nowhere", "hi", f"{flag}={value}"])
    assert f"argument {flag}: {value!r} is not a finite number" in line


def test_float_types():
    assert finite_float("-0.5") == -0.5 and non_negative_float("0") == 0.0
    for parse, text in [(finite_float, "nan"), (finite_float, "-inf"), (non_negative_float, "-1")]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


# ---- 2. absurd sizes ---------------------------------------------------------------------------------


def test_integers_past_int64_are_refused_by_the_flag():
    assert positive_int(str(MAX_INT)) == MAX_INT
    with pytest.raises(argparse.ArgumentTypeError, match="too large"):
        positive_int(str(MAX_INT + 1))
    with pytest.raises(argparse.ArgumentTypeError, match="at most 5"):
        int_at_least(0, 5)("6")


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--model", "nowhere", "hi", "--max-new-tokens", "99999999999999999999"],
        ["generate", "--model", "nowhere", "hi", "--seed", "99999999999999999999"],
        ["eval", "--model", "nowhere", "--tasks", "x", "--limit", "99999999999999999999"],
        ["eval", "--model", "nowhere", "--tasks", "x", "--num-beams", "99999999999999999999"],
    ],
)
def test_integers_past_int64_are_one_line(capsys, argv):
    assert "99999999999999999999 is too large (at most 9223372036854775807)" in one_line_error(capsys, argv)


def test_generate_refuses_a_request_too_large_for_memory(capsys, ckpt):
    line = one_line_error(capsys, ["generate", "--model", str(ckpt), "hi", "--num-beams", "100000000"])
    assert "num_beams=100000000 needs about" in line and "TB of memory" in line and "free" in line
    line = one_line_error(capsys, ["generate", "--model", str(ckpt), "hi", "--max-new-tokens", str(10**15)])
    assert f"max_new_tokens={10**15}" in line and "lower max_new_tokens" in line


def test_eval_refuses_a_request_too_large_for_memory(capsys, ckpt, tmp_path):
    argv = ["eval", "--model", str(ckpt), "--tasks", "quickstart_translate", "--limit", "2", "--quiet"]
    line = one_line_error(capsys, [*argv, "--max-new-tokens", str(10**15), "--out", str(tmp_path / "e")])
    assert "needs about" in line and "of memory" in line
    assert not (tmp_path / "e").exists()


def test_eval_limit_past_the_examples_takes_them_all(ckpt, tmp_path, capsys):
    argv = ["eval", "--model", str(ckpt), "--tasks", "quickstart_sentiment", "--quiet"]
    assert main([*argv, "--limit", str(MAX_INT), "--max-new-tokens", "2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["num_examples"]["quickstart_sentiment"] > 2


def test_train_refuses_a_model_too_large_for_memory(capsys, ckpt, tmp_path):
    argv = ["train", "--config", "configs/pretrain_span_corruption.yaml", f"model.tokenizer={ckpt}"]
    argv += ["model.overrides={d_model: 2000000000}", f"run_dir={tmp_path / 'run'}"]
    line = one_line_error(capsys, argv)
    assert "d_model=2000000000" in line and "B of memory" in line and "free" in line


# ---- 4. plot: lines of metrics.jsonl that are not records ----------------------------------------------


def test_plot_skips_lines_that_are_not_records(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    good = [json.dumps({"kind": "train", "step": s, "loss": 2.0 / s, "lr": 0.01}) for s in range(1, 6)]
    good.append(json.dumps({"kind": "eval", "step": 5, "bleu": 3.5, "loss": float("nan")}))
    stray = ["[1, 2]", "3", '{"kind": "train", "step": 6, "lo', '{"kind": "train"}']
    (run / "metrics.jsonl").write_text("\n".join(good + stray) + "\n")
    assert main(["plot", str(run)]) == 0
    out, err = capsys.readouterr()
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG" and out.strip() == str(run / "curves.png")
    warned = err.strip().splitlines()
    assert len(warned) == 4 and all(w.startswith("t2t plot: warning: ") for w in warned), err
    path = run / "metrics.jsonl"
    assert f"{path}:7: expected a JSON object" in warned[0] and "got list" in warned[0]
    assert f"{path}:8: expected a JSON object" in warned[1] and "got int" in warned[1]
    assert f"{path}:9: not valid JSON" in warned[2]
    assert f"{path}:10: a record needs" in warned[3]


def test_plot_of_records_without_numbers_is_one_line(capsys, tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train", "step": 1, "loss": NaN}\n')
    line = one_line_error(capsys, ["plot", str(tmp_path)])
    assert "no numbers to plot" in line
    assert not (tmp_path / "curves.png").exists()


# ---- 5. output folders that cannot be written --------------------------------------------------------


def test_read_only_fixture_is_read_only(read_only):
    assert not os.access(read_only, os.W_OK | os.X_OK)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["eval", "--model", "nowhere", "--tasks", "x", "--out", "{ro}/eval"], "--out {ro}/eval"),
        (["generate", "--model", "nowhere", "--input", "p.jsonl", "--output", "{ro}/a.jsonl"], "--output"),
        (["convert", "--from", "{ckpt}", "--to", "{ro}/c"], "--to {ro}/c"),
        (["quickstart", "--fast", "--out", "{ro}/qs"], "--out {ro}/qs"),
        (["plot", "nowhere", "--out", "{ro}/curves.png"], "--out {ro}/curves.png"),
    ],
    ids=["eval", "generate", "convert", "quickstart", "plot"],
)
def test_read_only_output_folders_fail_before_any_work(capsys, read_only, ckpt, argv, option):
    argv = [a.format(ro=read_only, ckpt=ckpt) for a in argv]
    line = one_line_error(capsys, argv)
    assert option.format(ro=read_only) in line
    assert f"{read_only} is not writable (permission denied)" in line
    assert list(read_only.iterdir()) == []


def test_finetune_into_a_read_only_folder_fails_before_training(capsys, read_only):
    line = one_line_error(capsys, ["finetune", "--recipe", "bert-sentiment", f"run_dir={read_only}/run"])
    assert f"run_dir={read_only}/run: {read_only} is not writable" in line
    assert list(read_only.iterdir()) == []


def test_tokenizer_train_into_a_read_only_folder_fails_before_training(capsys, read_only, ckpt, monkeypatch):
    import t2t.tokenizer

    def not_reached(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("trained before the --out check")

    monkeypatch.setattr(t2t.tokenizer, "train_tokenizer", not_reached)
    argv = ["tokenizer", "train", "--input", str(ckpt / "corpus.txt"), "--vocab-size", "300"]
    line = one_line_error(capsys, [*argv, "--out", str(read_only / "tok")])
    assert f"--out {read_only}/tok: {read_only} is not writable" in line


# ---- 6. tokenizer train over a folder that holds files -------------------------------------------------


def test_tokenizer_train_refuses_a_folder_with_files(capsys, ckpt, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (model_dir / name).write_bytes((ckpt / name).read_bytes())
    before = {p.name: p.read_bytes() for p in model_dir.iterdir()}
    argv = ["tokenizer", "train", "--input", str(ckpt / "corpus.txt"), "--vocab-size", "200"]
    line = one_line_error(capsys, [*argv, "--out", str(model_dir)])
    assert f"--out {model_dir} exists and is not empty; pick a new directory or pass --overwrite" in line
    assert {p.name: p.read_bytes() for p in model_dir.iterdir()} == before
    assert main([*argv, "--out", str(model_dir), "--overwrite"]) == 0
    assert (model_dir / "tokenizer.json").read_bytes() != before["tokenizer.json"]
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "empty")]) == 0  # a new folder needs no flag


# ---- 7. ids outside the vocabulary --------------------------------------------------------------------


def test_decode_refuses_ids_outside_the_vocabulary(capsys, ckpt, monkeypatch):
    line = one_line_error(capsys, ["tokenizer", "decode", "--tokenizer", str(ckpt), "5", "99999", "-3"])
    assert f"id 99999 is outside the vocabulary [0, 300) of {ckpt}" in line
    monkeypatch.setattr(sys, "stdin", io.StringIO("5 6\n7 -3\n"))
    line = one_line_error(capsys, ["tokenizer", "decode", "--tokenizer", str(ckpt)])
    assert "<stdin>:2: id -3 is outside the vocabulary [0, 300)" in line
    assert main(["tokenizer", "decode", "--tokenizer", str(ckpt), "5", "299"]) == 0


# ---- 8 and 9. checkpoints of NaN weights, or whose config was edited after the weights ----------------


def _copy(source: Path, target: Path) -> Path:
    target.mkdir()
    for f in source.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("command", ["generate", "eval"])
def test_checkpoint_of_non_finite_weights_is_one_line(capsys, ckpt, tmp_path, bad, command):
    broken = _copy(ckpt, tmp_path / "broken")
    state = load_file(broken / "model.safetensors")
    key = sorted(state)[3]
    state[key] = state[key].clone()
    state[key].view(-1)[1] = bad
    save_file(state, broken / "model.safetensors", metadata={"format": "pt"})
    argv = [command, "--model", str(broken)]
    argv += (
        ["hi"] if command == "generate" else ["--tasks", "quickstart_translate", "--out", str(tmp_path / "e")]
    )
    line = one_line_error(capsys, argv)
    what = "NaN" if math.isnan(bad) else "infinite"
    assert f"{broken}: weight " in line and f"holds {what} values" in line


@pytest.mark.parametrize("layout", ["hf", "t2t"])
def test_checkpoint_with_an_edited_d_ff_names_the_field(capsys, ckpt, tmp_path, layout):
    import t2t

    edited = tmp_path / "edited"
    if layout == "hf":
        edited = _copy(ckpt, edited)
        config_file = edited / "config.json"
    else:
        t2t.from_pretrained(ckpt).save_pretrained(edited, format="t2t")
        t2t.load_tokenizer(ckpt).save_pretrained(edited)
        config_file = edited / "t2t_config.json"
    config = json.loads(config_file.read_text())
    assert config["d_ff"] == 64
    config_file.write_text(json.dumps({**config, "d_ff": 96}))
    line = one_line_error(capsys, ["generate", "--model", str(edited), "hi"])
    assert "ffn.up.weight' has shape [64, 32] in the checkpoint but the config builds [96, 32]" in line or (
        "ffn.down.weight' has shape [32, 64] in the checkpoint but the config builds [32, 96]" in line
    )
    assert f"{config_file} says d_ff=96 but the weights were made with d_ff=64" in line


# ---- found by fuzzing the same commands -----------------------------------------------------------------


@pytest.mark.parametrize("action", ["encode", "decode"])
def test_stdin_that_is_not_utf8_is_one_line(capsys, ckpt, monkeypatch, action):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"5 6\n\xb0\x92\n"), encoding="utf-8"))
    line = one_line_error(capsys, ["tokenizer", action, "--tokenizer", str(ckpt)])
    assert "<stdin>: not UTF-8 text" in line


def test_prompts_nested_too_deeply_are_one_line(capsys, ckpt, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "hi"}\n' + "[" * 100_000 + "\n")
    line = one_line_error(capsys, ["generate", "--model", str(ckpt), "--input", str(prompts)])
    assert f"{prompts}:2: JSON nested too deeply" in line


def test_an_option_given_the_value_dashdash_is_one_line(capsys):
    """Python 3.11's argparse hands `--limit=--` over as [] (a traceback further on)."""
    assert "'--' is not an integer" in one_line_error(capsys, ["eval", "--limit=--", "--model", "x"])


def test_demo_caps_its_new_tokens(capsys):
    assert "at most 1024" in one_line_error(capsys, ["demo", "--new-tokens", str(10**12)])


def test_json_nested_too_deeply_is_one_line(tmp_path):
    from t2t.data.sources import read_records
    from t2t.errors import DataError
    from t2t.finetune import readers

    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(DataError, match="nested too deeply"):
        list(read_records(deep))
    with pytest.raises(DataError, match="nested too deeply"):
        readers.read_records(deep)


# ---------------------------------------------------------------- what the fuzzing test found (15)
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=100000000000000000000", "seed=100000000000000000000 is out of range"),
        ("data.seed=-1", "data.seed=-1 is out of range"),
        ("data.batch_size=1000000000", "data.batch_size=1000000000 needs about"),
        ("optim.decay_rate=1e308", "optim.decay_rate=1e+308 is out of range [-1.0, 0.0]"),
        ("eval.metrics=[]", "eval.metrics=[] names none"),
    ],
)
def test_train_config_values_the_fuzzer_found(override, message):
    from t2t.errors import ConfigError
    from t2t.train import TrainConfig

    with pytest.raises(ConfigError) as err:
        TrainConfig().with_overrides([override])
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("vocab_size", 10**20), ("d_ff", 2**31), ("n_encoder_layers", 10**20), ("head_dim", 10**12)],
)
def test_model_sizes_no_model_could_have_are_one_line(capsys, tmp_path, field, value):
    path = tmp_path / "model.yaml"
    path.write_text(f"arch: encoder-decoder\n{field}: {value}\n")
    assert "is out of range" in one_line_error(capsys, ["inspect", str(path)])


@pytest.mark.parametrize("content", ["null", "6", "[]", '{"model_type": "t5", "vocab_size": "false"}'])
def test_a_config_json_of_the_wrong_shape_is_one_line(capsys, tmp_path, content):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text(content)
    line = one_line_error(capsys, ["inspect", str(tmp_path / "ckpt")])
    assert "config.json" in line


@pytest.mark.parametrize("rows", ["a,b\n" + "x" * 140_000 + ",1\n", "sentence,label\rgood,1\rbad,0\r"])
def test_csv_rows_csv_cannot_read_are_one_data_error(tmp_path, rows):
    from t2t.data.sources import read_records
    from t2t.errors import DataError
    from t2t.finetune import readers

    path = tmp_path / "t.csv"
    path.write_text(rows, newline="")
    with pytest.raises(DataError, match="cannot read the row"):
        list(read_records(path))
    if "\r" in rows:  # the fine-tuning reader opens with newline="": csv reads bare CR line ends itself
        assert [r.data["label"] for r in readers.read_records(path)] == ["1", "0"]
    else:
        with pytest.raises(DataError, match="cannot read the row"):
            readers.read_records(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe not text", "not UTF-8 text"),
        (b"a: b: c\n", "not valid YAML"),
        (b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (b"?\n", "is not a name"),
    ],
)
def test_recipe_files_that_are_not_configs_are_one_line(capsys, tmp_path, content, message):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(content)
    assert message in one_line_error(capsys, ["finetune", "--recipe", str(path)])
    assert message in one_line_error(capsys, ["train", "--config", str(path)])


def test_a_home_of_no_user_is_one_line(capsys):
    assert "names no user here" in one_line_error(capsys, ["inspect", "~no_such_user_here/x"])


def test_a_prompt_of_bytes_that_are_not_utf8_is_one_line(capsys, ckpt):
    line = one_line_error(capsys, ["generate", "--model", str(ckpt), "caf\udce9"])
    assert "not a character" in line


def test_an_unknown_option_names_its_command(capsys):
    assert "unrecognized arguments: --bogus" in one_line_error(capsys, ["demo", "--bogus"])
