"""`t2t convert`: HF -> t2t -> HF keeps every tensor, tokenizer files travel along, output is atomic,
and mistakes (an unsupported architecture among them) are one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import t2t
from t2t.cli import convert as convert_module
from t2t.cli.main import main


def _hf_checkpoint(directory: Path, name: str) -> Path:
    model = t2t.build_model(t2t.preset(name))
    model.save_pretrained(directory, format="hf")
    (directory / "tokenizer_config.json").write_text('{"model_max_length": 512}\n')
    return directory


def _one_line_error(capsys, argv: list[str], message: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("name", ["t5-tiny", "bert-tiny", "gpt2-tiny", "llama-tiny"])
def test_round_trip_keeps_every_tensor(tmp_path: Path, capsys, name):
    hf = _hf_checkpoint(tmp_path / "hf", name)
    assert main(["convert", "--from", str(hf), "--to", str(tmp_path / "native")]) == 0
    native = tmp_path / "native"
    assert (native / "t2t_config.json").is_file() and not (native / "config.json").exists()
    assert (native / "tokenizer_config.json").read_text() == '{"model_max_length": 512}\n'
    assert main(["convert", "--from", str(native), "--to", str(tmp_path / "back")]) == 0
    back = tmp_path / "back"
    assert json.loads((back / "config.json").read_text()) == json.loads((hf / "config.json").read_text())
    before, after = load_file(str(hf / "model.safetensors")), load_file(str(back / "model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert "reloaded identical" in capsys.readouterr().out
    # the t2t directory's weights are t2t's own names, not HF's
    assert load_file(str(native / "model.safetensors")).keys() != before.keys()


def test_transformers_loads_the_converted_checkpoint(tmp_path: Path):
    transformers = pytest.importorskip("transformers")
    model = t2t.build_model(t2t.preset("gpt2-tiny")).eval()
    model.save_pretrained(tmp_path / "native", format="t2t")
    assert main(["convert", "--from", str(tmp_path / "native"), "--to", str(tmp_path / "hf")]) == 0
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = torch.tensor([[5, 9, 2, 77]])
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, model(ids).logits, atol=1e-5)


def test_unsupported_architecture_is_one_line(tmp_path: Path, capsys):
    bart = tmp_path / "bart"
    bart.mkdir()
    (bart / "config.json").write_text(json.dumps({"model_type": "bart", "vocab_size": 10}))
    argv = ["convert", "--from", str(bart), "--to", str(tmp_path / "out")]
    _one_line_error(capsys, argv, "model_type='bart' is not supported")
    assert not (tmp_path / "out").exists()


def test_no_hf_equivalent_is_refused(tmp_path: Path, capsys):
    odd = t2t.build_model(t2t.preset("gpt2-tiny", norm="rmsnorm"))
    odd.save_pretrained(tmp_path / "odd", format="t2t")
    argv = ["convert", "--from", str(tmp_path / "odd"), "--to", str(tmp_path / "out")]
    _one_line_error(capsys, argv, "has no Hugging Face transformers equivalent")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd"]


def test_target_rules_and_missing_source(tmp_path: Path, capsys):
    hf = _hf_checkpoint(tmp_path / "hf", "t5-tiny")
    _one_line_error(
        capsys,
        ["convert", "--from", str(tmp_path / "nope"), "--to", str(tmp_path / "o")],
        "no such directory",
    )
    _one_line_error(capsys, ["convert", "--from", str(hf), "--to", str(hf)], "is the --from directory")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    _one_line_error(capsys, ["convert", "--from", str(hf), "--to", str(busy)], "exists and is not empty")
    assert (busy / "keep.txt").read_text() == "mine"
    assert main(["convert", "--from", str(hf), "--to", str(busy), "--overwrite"]) == 0
    assert (busy / "t2t_config.json").is_file() and not (busy / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "hf"]  # nothing temporary left


def test_a_failure_leaves_no_partial_output(tmp_path: Path, capsys, monkeypatch):
    hf = _hf_checkpoint(tmp_path / "hf", "t5-tiny")

    def broken(model, directory):  # type: ignore[no-untyped-def]
        raise t2t.CheckpointError(f"{directory}: weight 'x' did not survive the conversion; nothing written")

    monkeypatch.setattr(convert_module, "_verify", broken)
    _one_line_error(capsys, ["convert", "--from", str(hf), "--to", str(tmp_path / "out")], "did not survive")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_help_example_runs(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first, *commands = convert_module.EXAMPLE
    assert "save_pretrained('hf-t5')" in first
    t2t.build_model(t2t.preset("t5-tiny")).save_pretrained("hf-t5")
    for line in commands:
        argv = line.split("#")[0].split()
        assert argv[0] == "t2t" and main(argv[1:]) == 0, line
    assert (tmp_path / "hf-again" / "config.json").is_file()
