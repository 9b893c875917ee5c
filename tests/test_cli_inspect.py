"""`t2t inspect`: parameter counts per part agree with the built model (and with transformers' published
totals), FLOPs follow the stated rule, every kind of MODEL argument works, and mistakes are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import t2t
from t2t.cli.inspect import inspect_model
from t2t.cli.main import main


def _inspect(capsys, *argv: str) -> dict:
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["t5-tiny", "t5-v1_1-tiny", "bert-tiny", "gpt2-tiny", "llama-tiny"])
def test_parts_add_up_to_the_built_models_count(name):
    cfg = t2t.preset(name)
    info = inspect_model(cfg)
    p = info["parameters"]
    assert p["embeddings"] + p["encoder"] + p["decoder"] + p["heads"] == p["total"]
    assert p["total"] == t2t.build_model(cfg).num_parameters()
    assert p["non_embedding"] == p["total"] - p["embeddings"]


def test_published_totals():
    # transformers: T5ForConditionalGeneration t5-small, GPT2LMHeadModel gpt2, BertForPreTraining bert-base
    assert inspect_model(t2t.preset("t5-small"))["parameters"]["total"] == 60_506_624
    assert inspect_model(t2t.preset("gpt2"))["parameters"]["total"] == 124_439_808
    assert (
        inspect_model(t2t.preset("gpt2"))["parameters"]["non_embedding"] == 85_056_000
    )  # 12 x 7,087,872 + 1,536
    assert inspect_model(t2t.preset("bert-base"))["parameters"]["total"] == 110_106_428


def test_flops_follow_the_stated_rule():
    info = inspect_model(t2t.preset("gpt2"))
    # 2 x 85,056,000 + 2 x 12 layers x 1024 ctx x 768 + 2 x 768 x 50257 (tied output projection)
    expected = 2 * 85_056_000 + 2 * 12 * 1024 * 768 + 2 * 768 * 50257
    assert info["context"] == 1024
    assert info["flops_per_token"] == {"decoder": {"forward": expected, "training": 3 * expected}}
    t5 = inspect_model(t2t.preset("t5-small"), context=100)
    p = t5["parameters"]
    encoder = 2 * p["encoder"] + 2 * 6 * 100 * 512
    decoder = 2 * p["decoder"] + 2 * 2 * 6 * 100 * 512 + 2 * 512 * 32128  # self + cross attention
    assert t5["flops_per_token"]["encoder"]["forward"] == encoder
    assert t5["flops_per_token"]["decoder"]["forward"] == decoder


def test_text_output_states_the_rule_and_the_counts(capsys):
    assert main(["inspect", "t5-small"]) == 0
    out = capsys.readouterr().out
    assert "60,506,624" in out and "non-embedding" in out
    assert "forward = 2 x N + 2 x n_layers x n_ctx x d_attn" in out and "training = 3 x forward" in out
    assert "encoder (per input token)" in out and "decoder (per target token)" in out


def test_config_file_and_checkpoint_directories(tmp_path: Path, capsys):
    cfg = t2t.preset("llama-tiny")
    expected = inspect_model(cfg)["parameters"]
    cfg.save(tmp_path / "llama.yaml")
    assert _inspect(capsys, str(tmp_path / "llama.yaml"))["parameters"] == expected
    model = t2t.build_model(cfg)
    model.save_pretrained(tmp_path / "hf", format="hf")
    model.save_pretrained(tmp_path / "native", format="t2t")
    assert (tmp_path / "hf" / "config.json").is_file() and (tmp_path / "native" / "t2t_config.json").is_file()
    assert _inspect(capsys, str(tmp_path / "hf"))["parameters"] == expected
    assert _inspect(capsys, str(tmp_path / "native"))["parameters"] == expected
    assert _inspect(capsys, str(tmp_path / "hf" / "config.json"))["parameters"] == expected


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: "t5-smal", "unknown preset 't5-smal' (did you mean 't5-small'?)"),
        (lambda d: str(d / "missing.yaml"), "missing.yaml: no such file or directory"),
        (lambda d: str(d), "neither t2t_config.json nor config.json"),
        (lambda d: _write(d / "config.json", {"model_type": "bart"}), "model_type='bart' is not supported"),
        (lambda d: _write(d / "bad.yaml", "d_model: [1"), "not valid YAML"),
        (lambda d: _write(d / "typo.yaml", "d_modle: 8"), "d_modle"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys, make, message):
    code = main(["inspect", make(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def _write(path: Path, content: object) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path.parent if path.name == "config.json" else path)


def test_every_subcommands_help_ends_with_an_example():
    from t2t.cli.main import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in ("eval", "convert", "inspect", "generate", "tokenizer"):
        assert name in commands
    for name, sub in commands.items():
        assert "example:\n  t2t " in sub.format_help() or "example:\n  python " in sub.format_help(), name


def test_help_examples_run(tmp_path: Path, capsys, monkeypatch):
    from t2t.cli.inspect import EXAMPLE

    monkeypatch.chdir(tmp_path)
    t2t.preset("llama-tiny").save("llama.yaml")  # what the example's python -c line does
    for line in EXAMPLE:
        command = line.split("&& ")[-1].split()
        assert command[0] == "t2t" and main(command[1:]) == 0, line
    assert "llama.yaml" in capsys.readouterr().out
