"""The quickstart: built-in data kept apart between splits, and the --fast run end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from t2t.data import get_task
from t2t.quickstart import QUICKSTART_TASKS, register_quickstart_tasks


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9äöüß]+", " ", text.lower()).strip()


@pytest.mark.parametrize("name", QUICKSTART_TASKS)
def test_no_test_example_is_in_training(name: str) -> None:
    register_quickstart_tasks()
    task = get_task(name)
    train = {_normalise(e["inputs"]) for e in task.examples("train")}
    test = [_normalise(e["inputs"]) for e in task.examples("test")]
    assert test and train
    leaked = [t for t in test if t in train]
    assert not leaked, f"{len(leaked)} test inputs of {name} occur in training, e.g. {leaked[0]!r}"


def test_rule_tasks_hold_out_what_a_memoriser_would_need() -> None:
    """Reasoning: no (subject, property) pair of a test rule is stated in training, and half the facts
    deny the rule's condition (answer: nothing follows); question: no fact of a test context is stated
    in training; translation: no test number is a training number. So a held-out item cannot be
    answered from memory."""
    register_quickstart_tasks()
    rule = re.compile(r"If [^,]+, (.+?) gets (\w+)\. ")
    reasoning = get_task("quickstart_reasoning")

    def pairs(split: str) -> set[tuple[str, str]]:
        return {rule.search(e["inputs"]).groups() for e in reasoning.examples(split)}  # type: ignore[union-attr]

    assert pairs("test") and not pairs("test") & pairs("train")
    for split in ("train", "test"):
        examples = list(reasoning.examples(split))
        denied = [e for e in examples if " does not " in e["inputs"]]
        assert all(e["targets"] == "nothing follows" for e in denied)
        assert all(rule.search(e["inputs"]).group(2) == e["targets"] for e in examples if e not in denied)  # type: ignore[union-attr]
        assert 0.4 < len(denied) / len(examples) < 0.6
    fact = re.compile(r"(\w+) (?:lives in|works as a) (\w+)\.")

    def facts(split: str) -> set[tuple[str, str]]:
        return {f for e in get_task("quickstart_question").examples(split) for f in fact.findall(e["inputs"])}

    assert facts("test") and not facts("test") & facts("train")
    translate = get_task("quickstart_translate")
    assert not {e["targets"] for e in translate.examples("test")} & {
        e["targets"] for e in translate.examples("train")
    }


def test_prefixes_mirror_the_examples() -> None:
    register_quickstart_tasks()
    first = {name: next(get_task(name).examples("test"))["inputs"] for name in QUICKSTART_TASKS}
    assert first["quickstart_translate"].startswith("translate English to German: ")
    assert first["quickstart_sentiment"].startswith("classify sentiment: ")
    assert re.match(r"question: .+ context: .+", first["quickstart_question"])
    assert first["quickstart_summarize"].startswith("summarize: ")
    assert first["quickstart_reasoning"].startswith("reasoning: ")


@pytest.mark.slow
def test_fast_quickstart_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "qs"
    run = subprocess.run(
        [sys.executable, "-m", "t2t.cli.main", "quickstart", "--fast", "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    low = "10% of the data"
    assert list(report["scores"]) == [
        "pretrained",
        "from scratch",
        f"pretrained, {low}",
        f"from scratch, {low}",
    ]
    for variant in report["scores"].values():
        assert set(variant) == set(QUICKSTART_TASKS)
        for metrics in variant.values():
            assert all(0.0 <= v <= 100.0 for v in metrics.values())
    assert "| quickstart_reasoning (rule) | exact_match |" in run.stdout
    assert "Target: at least 90 exact match on every rule task" in run.stdout
    assert report["rule_target"] == {"metric": "exact_match", "at_least": 90.0}
    assert "Pretraining (pretrained minus from scratch" in run.stdout and f"- {low}: " in run.stdout
    for task, met in report["rule_target_met"].items():
        assert set(met) == {"pretrained", "from scratch"}  # the low-data arm is not held to the target
        for variant, ok in met.items():
            assert ok == (report["scores"][variant][task]["exact_match"] >= 90.0)
    assert [line.split("] ")[1] for line in run.stdout.splitlines() if line.startswith("== [")] == list(
        report["stages"]
    )
    assert len(report["answers"]) == 6 and all(isinstance(a, str) for _, a in report["answers"])
    # The model directory is what t2t generate takes as it is.
    gen = subprocess.run(
        [
            sys.executable,
            "-m",
            "t2t.cli.main",
            "generate",
            "--model",
            str(out / "model"),
            "reasoning: If it rains,",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert gen.returncode == 0, gen.stderr[-2000:]
    # ... and so is t2t eval, which scores it as the quickstart did.
    eval_out = tmp_path / "eval"
    ev = subprocess.run(
        [
            sys.executable,
            "-m",
            "t2t.cli.main",
            "eval",
            "--model",
            str(out / "model"),
            "--tasks",
            "quickstart_translate",
            "--limit",
            "40",
            "--batch-size",
            "64",
            "--max-new-tokens",
            "24",
            "--quiet",
            "--out",
            str(eval_out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ev.returncode == 0, ev.stderr[-2000:]
    scored = json.loads((eval_out / "eval.json").read_text())
    exact = report["scores"]["pretrained"]["quickstart_translate"]["exact_match"]
    assert abs(scored["scores"]["quickstart_translate"]["exact_match"] - exact) < 1e-6


def test_the_report_states_what_pretraining_changed() -> None:
    from t2t.quickstart.report import target_verdicts, transfer_lines

    scores = {
        "pretrained": {
            "quickstart_translate": {"exact_match": 90.0, "chrf": 99.0},
            "quickstart_x": {"f": 50.0},
        },
        "from scratch": {
            "quickstart_translate": {"exact_match": 95.5, "chrf": 1.0},
            "quickstart_x": {"f": 40.0},
        },
        "pretrained, 10% of the data": {"quickstart_translate": {"exact_match": 30.0}},
        "from scratch, 10% of the data": {"quickstart_translate": {"exact_match": 20.0}},
    }
    title, full, low, caveat = transfer_lines(scores)
    assert title.startswith("Pretraining (pretrained minus from scratch")
    assert full == "- all the data: translate -5.5, x +10.0; mean +2.2"  # each task's first metric, not chrF
    assert low == "- 10% of the data: translate +10.0; mean +10.0"
    assert "docs/experiments/transfer/report.md" in caveat
    assert transfer_lines({"pretrained": scores["pretrained"]}) == []
    # the 90 target is judged on the variants trained on all the data only
    assert target_verdicts(scores) == {"quickstart_translate": {"pretrained": True, "from scratch": True}}
