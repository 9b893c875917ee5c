"""`t2t eval`: tasks from names, mixtures and YAML files, eval.json + eval.md written, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generation_helpers import spread_weights, tiny_model_for, train_tokenizer
from t2t.cli.main import main
from t2t.metrics import compute


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ckpt")
    tokenizer = train_tokenizer(directory, "sentencepiece", 300)
    model = tiny_model_for(tokenizer, "encoder-decoder", seed=1)
    spread_weights(model, 1)
    model.save_pretrained(directory / "model")
    tokenizer.save_pretrained(directory / "model")
    return directory / "model"


@pytest.fixture
def tasks_yaml(tmp_path: Path) -> Path:
    data = tmp_path / "words"
    data.mkdir()
    rows = [{"word": w, "upper": w.upper()} for w in ["house", "dog", "quick", "fox", "lazy"]]
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks.yaml").write_text(
        "tasks:\n"
        "  - name: cli_upper\n"
        "    source: words\n"
        "    prefix: 'upper: '\n"
        "    metrics: [exact_match, chrf]\n"
        "    fields: {inputs: word, targets: upper}\n"
    )
    return tmp_path / "tasks.yaml"


def test_eval_writes_json_and_markdown(checkpoint, tasks_yaml, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["eval", "--model", str(checkpoint), "--tasks", str(tasks_yaml), "--out", str(out)]
    code = main([*argv, "--limit", "3", "--max-new-tokens", "4", "--batch-size", "2", "--quiet"])
    assert code == 0
    data = json.loads((out / "eval.json").read_text())
    assert data["num_examples"] == {"cli_upper": 3} and data["split"] == "test"
    assert data["settings"] == {"batch_size": 2, "max_new_tokens": 4, "num_beams": 1, "limit": 3}
    rows = data["examples"]["cli_upper"]
    assert [r["inputs"] for r in rows] == ["upper: house", "upper: dog", "upper: quick"]
    # the scores are those of the predictions the report shows
    predictions, targets = [r["prediction"] for r in rows], [r["target"] for r in rows]
    assert (
        data["scores"]["cli_upper"]["exact_match"]
        == compute("exact_match", predictions, targets)["exact_match"]
    )
    assert data["scores"]["cli_upper"]["chrf"] == pytest.approx(compute("chrf", predictions, targets)["chrf"])
    printed = capsys.readouterr().out
    assert "| cli_upper | exact_match |" in printed and "| cli_upper | chrf |" in printed
    assert (out / "eval.md").read_text().startswith(printed.strip())


def test_builtin_task_names_resolve(checkpoint, tmp_path):
    pytest.importorskip("t2t.quickstart.tasks")
    out = tmp_path / "out"
    argv = ["eval", "--model", str(checkpoint), "--tasks", "quickstart_translate", "--out", str(out)]
    assert main([*argv, "--limit", "2", "--max-new-tokens", "3", "--quiet"]) == 0
    data = json.loads((out / "eval.json").read_text())
    assert data["num_examples"] == {"quickstart_translate": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "cli_uper"], "did you mean 'cli_upper'"),
        (["--tasks", "TASKS", "--split", "train"], "has no split 'train'"),
        (["--tasks", "missing.yaml"], "missing.yaml: no such file"),
        (["--tasks", " , "], "names no task"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(checkpoint, tasks_yaml, tmp_path, capsys, args, message):
    args = [str(tasks_yaml) if a == "TASKS" else a for a in args]
    if args[1] == "cli_uper":  # the task must be registered for the suggestion
        args[1] = f"{tasks_yaml},cli_uper"
    code = main(["eval", "--model", str(checkpoint), "--out", str(tmp_path / "out"), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err and err.startswith("t2t eval: error:")
    assert not (tmp_path / "out").exists()


def test_missing_model_directory(tasks_yaml, tmp_path, capsys):
    code = main(["eval", "--model", str(tmp_path / "nope"), "--tasks", str(tasks_yaml), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "nope" in err
