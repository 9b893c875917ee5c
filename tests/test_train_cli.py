"""`t2t train` and `t2t plot` end to end on the real data pipeline (tasks YAML, make_stream, evaluate)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from t2t.cli.main import main
from t2t.errors import ConfigError
from t2t.train import TrainConfig, read_metrics

WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
GERMAN = ["eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """A translation task, a text corpus, a trained tokenizer and a recipe using them."""
    root = tmp_path_factory.mktemp("recipe")
    for split, n in (("train", 60), ("validation", 6)):
        with open(root / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps({"inputs": WORDS[i % 10], "targets": GERMAN[i % 10]}) + "\n")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(" ".join(WORDS[j:] + GERMAN[:j]) for j in range(10)) * 5 + "\n")
    (root / "tasks.yaml").write_text(
        yaml.safe_dump(
            {
                "tasks": [
                    {
                        "name": "numbers",
                        "template": "translation",
                        "source": {"train": "train.jsonl", "validation": "validation.jsonl"},
                    }
                ]
            }
        )
    )
    assert (
        main(
            ["tokenizer", "train", "--input", str(corpus), "--vocab-size", "200", "--out", str(root / "tok")]
        )
        == 0
    )
    cfg = {
        "run_dir": str(root / "run"),
        "max_steps": 4,
        "progress": False,
        "log_every": 1,
        "model": {
            "preset": "t5-tiny",
            "tokenizer": str(root / "tok"),
            "overrides": {"dropout": 0.0},
        },
        "data": {
            "tasks_yaml": [str(root / "tasks.yaml")],
            "task": "numbers",
            "batch_size": 4,
            "max_input_length": 16,
            "max_target_length": 8,
        },
        "optim": {"name": "adafactor", "lr": 1e-3},
        "eval": {"every": 2, "tasks": ["numbers"], "limit": 6, "max_new_tokens": 4, "loss": True},
        "checkpoint": {"every": 2},
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(cfg))
    return root


def test_dry_run_applies_overrides(recipe, capsys):
    assert main(["train", "--config", str(recipe / "recipe.yaml"), "optim.lr=0.0003", "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["optim"]["lr"] == 3e-4 and resolved["data"]["task"] == "numbers"


def test_typo_in_an_override_is_one_line_and_exit_2(recipe):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "t2t.cli.main",
            "train",
            "--config",
            str(recipe / "recipe.yaml"),
            "optim.lrate=1",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown key 'optim.lrate'" in proc.stderr


def test_bad_recipe_value_fails_before_training(recipe, tmp_path):
    bad = yaml.safe_load((recipe / "recipe.yaml").read_text())
    bad["data"]["objective"] = "span_corruptoin"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = subprocess.run(
        [sys.executable, "-m", "t2t.cli.main", "train", "--config", str(tmp_path / "bad.yaml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert (
        "data.objective='span_corruptoin'" in proc.stderr and "did you mean 'span_corruption'" in proc.stderr
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("max_steps=abc", "max_steps='abc' should be an integer"),
        ("optim.lr=-1", "optim.lr=-1.0 is out of range [0.0, inf]"),
        ("data.replay.share=2", "data.replay.share=2.0 is out of range [0.0, 1.0]"),
        ("scheduled_sampling.schedule=linaer", "scheduled_sampling.schedule='linaer' is not one of"),
        ("model.config=shape.yaml", "model.preset and config are both set"),
        ("data.mixture=m", "data.task and mixture are both set"),
    ],
)
def test_a_bad_value_names_its_whole_key_once(recipe, override, message):
    """Wrong type, out of range, not a choice, conflicting keys: the message starts with the dotted key."""
    with pytest.raises(ConfigError) as err:
        TrainConfig.load(recipe / "recipe.yaml").with_overrides([override])
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.slow
def test_train_resume_and_plot(recipe):
    run = recipe / "run"
    assert main(["train", "--config", str(recipe / "recipe.yaml")]) == 0
    saved = TrainConfig.load(run / "config.yaml")
    assert saved.data.task == "numbers"
    evals = [r for r in read_metrics(run) if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    assert {"numbers/bleu", "numbers/chrf", "eval_loss"} <= set(evals[0])
    last = (run / "checkpoints" / "last").resolve()
    assert (last / "spiece.model").is_file() or any(last.glob("tokenizer*"))  # tokenizer beside the model
    assert main(["train", "--config", str(recipe / "recipe.yaml"), "max_steps=6", "--resume"]) == 0
    steps = [r["step"] for r in read_metrics(run) if r["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert main(["plot", str(run)]) == 0
    png = run / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (REPO / "configs").glob("*.yaml") if p.name != "tasks.yaml")


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_is_a_valid_config(path):
    cfg = TrainConfig.load(path)
    assert cfg.data.tasks_yaml == ["configs/tasks.yaml"]
    assert cfg.model.checkpoint or cfg.model.tokenizer
    assert cfg.data.shuffle == (
        cfg.data.objective == "text2text"
    )  # fine-tuning shuffles, pre-training reads in order


TINY = "model.overrides={d_model: 32, d_ff: 64, n_heads: 2, n_encoder_layers: 1, n_decoder_layers: 1}"


@pytest.fixture(scope="module")
def builtin_tokenizer(tmp_path_factory) -> Path:
    """A small sentencepiece vocabulary of the built-in corpus, for the recipes in configs/."""
    tok = tmp_path_factory.mktemp("builtin") / "tok"
    corpus = REPO / "data" / "builtin" / "finetune" / "corpus" / "train.txt"
    assert main(["tokenizer", "train", "--input", str(corpus), "--vocab-size", "600", "--out", str(tok)]) == 0
    return tok


@pytest.mark.slow
def test_stagewise_recipes_run_end_to_end(tmp_path, monkeypatch, builtin_tokenizer):
    """Span-corruption pre-training, then multi-task fine-tuning from its checkpoint (tiny shapes)."""
    monkeypatch.chdir(REPO)  # recipes name paths relative to the repository
    tok, tiny = builtin_tokenizer, TINY
    common = ["max_steps=2", "data.batch_size=4", "progress=false", "tensorboard=false"]
    pre = tmp_path / "pre"
    args = [
        "train",
        "--config",
        "configs/pretrain_span_corruption.yaml",
        f"run_dir={pre}",
        f"model.tokenizer={tok}",
    ]
    assert main([*args, tiny, *common]) == 0
    fine = tmp_path / "fine"
    args = ["train", "--config", "configs/finetune_multitask.yaml", f"run_dir={fine}"]
    assert (
        main(
            [
                *args,
                f"model.checkpoint={pre}/checkpoints/last",
                "eval.limit=2",
                "eval.max_new_tokens=2",
                *common,
            ]
        )
        == 0
    )
    (record,) = [r for r in read_metrics(fine) if r["kind"] == "eval"]
    assert {"translate/chrf", "sentiment/accuracy", "question/exact_match", "reasoning/exact_match"} <= set(
        record
    )


@pytest.mark.slow
def test_incremental_recipes_run_end_to_end(tmp_path, monkeypatch, builtin_tokenizer):
    """incremental_base.yaml, then incremental_replay.yaml from its checkpoint with replay 0.25 and 0
    (tiny shapes): each writes forgetting.json / .md with the earlier tasks before and after."""
    monkeypatch.chdir(REPO)
    common = ["max_steps=4", "data.batch_size=4", "progress=false", "tensorboard=false"]
    common += ["eval.limit=2", "eval.max_new_tokens=2"]
    base = tmp_path / "base"
    args = ["train", "--config", "configs/incremental_base.yaml", f"run_dir={base}"]
    assert main([*args, f"model.tokenizer={builtin_tokenizer}", TINY, *common]) == 0
    for share in ("0.25", "0"):
        run = tmp_path / f"replay-{share}"
        args = ["train", "--config", "configs/incremental_replay.yaml", f"run_dir={run}"]
        overrides = [f"model.checkpoint={base}/checkpoints/last", f"data.replay.share={share}"]
        assert main([*args, *overrides, *common]) == 0
        report = json.loads((run / "forgetting.json").read_text())
        assert report["replay_share"] == float(share)
        assert set(report["metrics"]) == {"sentiment/accuracy", "reasoning/exact_match"}
        assert (
            (run / "forgetting.md")
            .read_text()
            .startswith(f"# Forgetting of earlier tasks (replay share {share})")
        )
