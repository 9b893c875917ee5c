"""`t2t eval`: tasks from names, mixtures and YAML files, eval.json + eval.md written, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from generation_helpers import save_tiny_pipeline
from t2t.cli.main import main
from t2t.metrics import compute


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("ckpt"))


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


# ---- every kind of metric through t2t eval ----------------------------------------------------------
# One task per kind of metric, declared in YAML over tiny JSONL data, each row with the answer the
# "model" gives (an oracle stands in for generation, so the scores are known): t2t eval must read the
# declaration, postprocess, score with each metric and write the same numbers the reference libraries
# (sacrebleu, rouge-score) or a hand count give.
KINDS: dict[str, tuple[str, list[dict]]] = {
    "mk_sentiment": (
        "{template: classification, postprocess: lower}",
        [
            {"inputs": "a fine day", "targets": "positive", "answer": "Positive"},
            {"inputs": "a sad day", "targets": "negative", "answer": "negative"},
            {"inputs": "a grey day", "targets": "negative", "answer": "positive"},
            {"inputs": "a warm day", "targets": "positive", "answer": " positive"},
        ],
    ),
    "mk_qa": (
        "{template: qa}",
        [
            {
                "question": "Who?",
                "context": "The Lamb came.",
                "answers": ["lamb", "a lamb"],
                "answer": "The Lamb!",
            },
            {"question": "What?", "context": "A fox ran.", "answers": ["fox"], "answer": "a red fox"},
            {"question": "Where?", "context": "In Rome.", "answers": ["Rome"], "answer": "Paris"},
        ],
    ),
    "mk_summary": (
        "{template: summarization}",
        [
            {
                "inputs": "Emma built a bridge. It rained.",
                "targets": "Emma built a bridge.",
                "answer": "Emma built a bridge.",
            },
            {
                "inputs": "Ben sold a house. It was cold.",
                "targets": "Ben sold an old house.",
                "answer": "Ben sold a cold house.",
            },
        ],
    ),
    "mk_translate": (
        "{template: translation}",
        [
            {"inputs": "three hundred and one", "targets": "dreihunderteins", "answer": "dreihunderteins"},
            {
                "inputs": "the small house is old",
                "targets": "das kleine Haus ist alt",
                "answer": "das kleine Haus ist neu",
            },
        ],
    ),
    "mk_tags": (
        "{prefix: 'tag: ', metrics: [entity_f1]}",
        [
            {"inputs": "Anna met Ben", "targets": "B-PER O B-PER", "answer": "B-PER O B-PER"},
            {"inputs": "New York Times", "targets": "B-ORG I-ORG I-ORG", "answer": "B-LOC I-LOC O"},
        ],
    ),
    "mk_similarity": (
        "{prefix: 'similarity: ', metrics: [pearson, spearman]}",
        [
            {"inputs": "a", "targets": "1.0", "answer": "1.5"},
            {"inputs": "b", "targets": "2.0", "answer": "1.0"},
            {"inputs": "c", "targets": "3.0", "answer": "3.5"},
            {"inputs": "d", "targets": "4.0", "answer": "five"},  # not a number: -1, as T5 scores it
        ],
    ),
}


class OraclePipeline:
    """Answers each prompt with the `answer` its row names (generation is tested elsewhere)."""

    answers: ClassVar[dict[str, str]] = {}

    def __init__(self, model, tokenizer, **settings) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings

    def __call__(self, prompts, labels=None, progress=None):  # type: ignore[no-untyped-def]
        if progress is not None:
            progress(len(prompts))
        return [self.answers[p] for p in prompts]


def _pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return cov / (sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y)) ** 0.5


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    return [float(order.index(i)) for i in range(len(values))]  # no ties in these rows


def test_every_metric_kind_through_the_cli(checkpoint, tmp_path, capsys, monkeypatch):
    import sacrebleu
    from rouge_score import rouge_scorer

    import t2t.generation

    declarations = []
    for name, (options, rows) in KINDS.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        declarations.append(f"  - {{name: {name}, source: {name}, {options[1:-1]}}}\n")
    (tmp_path / "kinds.yaml").write_text("tasks:\n" + "".join(declarations))
    from t2t.data import load_tasks_yaml

    tasks = {t.name: t for t in load_tasks_yaml(tmp_path / "kinds.yaml", overwrite=True)}
    OraclePipeline.answers = {
        e["inputs"]: row["answer"]
        for name, (_, rows) in KINDS.items()
        for e, row in zip(tasks[name].examples("test"), rows)
    }
    monkeypatch.setattr(t2t.generation, "Pipeline", OraclePipeline)

    out = tmp_path / "out"
    argv = ["eval", "--model", str(checkpoint), "--tasks", str(tmp_path / "kinds.yaml"), "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    scores = json.loads((out / "eval.json").read_text())["scores"]
    approx = pytest.approx

    assert scores["mk_sentiment"] == {
        "accuracy": 75.0
    }  # "Positive" lower-cased counts; "positive" for a negative does not
    # SQuAD normalisation: "The Lamb!" = "lamb"; "a red fox" vs "fox": F1 = 2 * (1/2 * 1) / (1/2 + 1)
    assert scores["mk_qa"] == approx({"exact_match": 100 / 3, "token_f1": (100 + 100 * 2 / 3 + 0) / 3})
    rouge = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    pairs = [(r["targets"], r["answer"]) for r in KINDS["mk_summary"][1]]
    expected = {
        k: 100 * sum(rouge.score(t, p)[k].fmeasure for t, p in pairs) / len(pairs)
        for k in ("rouge1", "rouge2", "rougeL")
    }
    assert scores["mk_summary"] == approx(expected) and 0 < expected["rouge2"] < expected["rouge1"] < 100
    predictions = [r["answer"] for r in KINDS["mk_translate"][1]]
    references = [[r["targets"] for r in KINDS["mk_translate"][1]]]
    assert scores["mk_translate"] == approx(
        {
            "bleu": sacrebleu.corpus_bleu(predictions, references).score,
            "chrf": sacrebleu.corpus_chrf(predictions, references).score,
        }
    )
    assert 0 < scores["mk_translate"]["bleu"] < 100
    # gold: PER(0), PER(2), ORG(0-2); predicted: PER(0), PER(2), LOC(0-1) -> P = R = 2/3
    assert scores["mk_tags"] == approx(
        {"entity_f1": 200 / 3, "entity_precision": 200 / 3, "entity_recall": 200 / 3}
    )
    gold, said = [1.0, 2.0, 3.0, 4.0], [1.5, 1.0, 3.5, -1.0]
    assert scores["mk_similarity"] == approx(
        {"pearson": _pearson(said, gold), "spearman": _pearson(_ranks(said), _ranks(gold))}
    )

    table = capsys.readouterr().out
    for line in (
        "| mk_qa | token_f1 | 55.56 | 3 |",
        "| mk_sentiment | accuracy | 75.00 | 4 |",
        "| mk_tags | entity_f1 | 66.67 | 2 |",
    ):
        assert line in table
    assert f"| mk_similarity | pearson | {_pearson(said, gold):.4f} | 4 |" in table  # correlations: 4 places
