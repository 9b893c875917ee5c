"""t2t.evaluate: predictions come from t2t.generation in input order whatever the batching, each task's
postprocess and metrics are applied, and the report is written whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import t2t
from generation_helpers import spread_weights, tiny_model_for, train_tokenizer
from t2t.data import Mixture, Task, register_mixture, register_task
from t2t.errors import ConfigError, DataError, T2TError
from t2t.evaluate import EvalReport, evaluate
from t2t.generation import Pipeline

PROMPTS = [
    f"translate English to German: {w}"
    for w in ["house", "dog", "the quick fox", "brown", "lazy", "café", "data", "text"]
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return train_tokenizer(tmp_path_factory.mktemp("tok"), "sentencepiece", 300)


def _model(tokenizer, arch: str):
    """A tiny random model whose answers vary with the prompt (spread weights; see generation_helpers)."""
    model = tiny_model_for(tokenizer, arch, seed=3)
    spread_weights(model, 3)
    return model


@pytest.fixture(scope="module")
def t5(tokenizer):
    return _model(tokenizer, "encoder-decoder")


@pytest.fixture(scope="module")
def t5_answers(t5, tokenizer):
    return _own_answers(t5, tokenizer)


def _own_answers(model, tokenizer, max_new_tokens: int = 6) -> list[tuple[str, str]]:
    """(prompt, the model's greedy answer) one prompt at a time, for prompts with a non-empty answer."""
    pipe = Pipeline(model, tokenizer, max_new_tokens=max_new_tokens)
    pairs = [(p, pipe(p)) for p in PROMPTS]
    pairs = [(p, a) for p, a in pairs if a.strip()]
    assert len(pairs) >= 6, "the tiny model should answer most prompts with some text"
    return pairs


def _task(name: str, rows: list[dict], **options) -> Task:
    return Task(name, lambda split: rows if split == "test" else [], splits=("train", "test"), **options)


@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_scores_count_the_models_own_answers_in_input_order(request, tokenizer, arch):
    if arch == "encoder-decoder":
        model, pairs = request.getfixturevalue("t5"), request.getfixturevalue("t5_answers")
    else:
        model = _model(tokenizer, arch)
        pairs = _own_answers(model, tokenizer)
    # every other target is the model's own answer, the rest are wrong: exact match is the share kept
    rows = [{"inputs": p, "targets": a if i % 2 == 0 else "zzz wrong"} for i, (p, a) in enumerate(pairs)]
    expected = 100 * len(rows[::2]) / len(rows)
    report = evaluate(
        model,
        tokenizer,
        [_task("own", rows, metrics=["exact_match", "accuracy"])],
        batch_size=3,
        max_new_tokens=6,
        progress=False,
    )
    assert report.scores["own"]["exact_match"] == pytest.approx(expected)
    assert report.scores["own"]["accuracy"] == pytest.approx(expected)
    assert report.num_examples["own"] == len(rows)
    kept = report.examples["own"]
    assert [r["prediction"] for r in kept] == [a for _, a in pairs[: len(kept)]]
    assert kept[1]["target"] == "zzz wrong" and kept[0]["inputs"] == pairs[0][0]


def test_postprocess_applies_to_predictions_and_targets(t5, tokenizer):
    rows = [{"inputs": p, "targets": "nothing like it"} for p in PROMPTS[:4]]
    same = _task("constant", rows, metrics=["accuracy"], postprocess=lambda text: "x")
    length = _task("length", rows, metrics=["accuracy"], postprocess=lambda text: len(text) > 10**6)
    plain = _task("plain", rows, metrics=["accuracy"])
    report = evaluate(t5, tokenizer, [same, length, plain], max_new_tokens=4, progress=False)
    assert report.scores == {
        "constant": {"accuracy": 100.0},
        "length": {"accuracy": 100.0},
        "plain": {"accuracy": 0.0},
    }


def test_any_listed_answer_counts_and_limit_cuts_the_split(t5, t5_answers, tokenizer):
    pairs = t5_answers
    rows = [{"inputs": p, "targets": "zzz", "answers": ["zzz", a.upper() + "!"]} for p, a in pairs]
    report = evaluate(
        t5,
        tokenizer,
        [_task("answers", rows, metrics=["exact_match"])],
        limit=3,
        max_new_tokens=6,
        progress=False,
    )
    assert report.num_examples == {"answers": 3}
    assert report.scores["answers"]["exact_match"] == pytest.approx(100.0)  # SQuAD normalisation


def test_tasks_by_registered_name_and_mixture(t5, tokenizer):
    rows = [{"inputs": p, "targets": "a b"} for p in PROMPTS[:2]]
    register_task(_task("eval_test_one", rows, metrics=["token_f1"]), overwrite=True)
    register_task(_task("eval_test_two", rows, metrics=["rouge", "bleu"]), overwrite=True)
    register_mixture(Mixture("eval_test_mix", ["eval_test_one", "eval_test_two"]), overwrite=True)
    report = evaluate(t5, tokenizer, ["eval_test_mix"], max_new_tokens=3, progress=False)
    assert list(report.scores) == ["eval_test_one", "eval_test_two"]
    assert list(report.scores["eval_test_two"]) == ["rouge1", "rouge2", "rougeL", "bleu"]
    with pytest.raises(DataError, match=r"'eval_test_on'.*did you mean 'eval_test_one'"):
        evaluate(t5, tokenizer, ["eval_test_on"], progress=False)


def test_mistakes_fail_before_generation(t5, tokenizer):
    rows = [{"inputs": "x", "targets": "y"}]
    with pytest.raises(ConfigError, match=r"unknown metric 'blue'.*did you mean 'bleu'"):
        evaluate(t5, tokenizer, [_task("bad_metric", rows, metrics=["blue"])], progress=False)
    with pytest.raises(DataError, match="the test split has no examples"):
        evaluate(t5, tokenizer, [_task("empty", [])], progress=False)
    with pytest.raises(DataError, match="no split 'validaton'"):
        evaluate(t5, tokenizer, [_task("split", rows)], split="validaton", progress=False)
    with pytest.raises(DataError, match="named twice"):
        evaluate(t5, tokenizer, [_task("twice", rows), _task("twice", rows)], progress=False)
    bert = t2t.build_model(t2t.preset("bert-tiny"))
    with pytest.raises(T2TError, match="no decoder to generate with"):
        evaluate(bert, tokenizer, [_task("enc", rows)], progress=False)


def test_training_mode_is_restored(t5, tokenizer):
    t5.train()
    try:
        evaluate(
            t5,
            tokenizer,
            [_task("mode", [{"inputs": "x y", "targets": "y"}])],
            max_new_tokens=2,
            progress=False,
        )
        assert t5.training
    finally:
        t5.eval()


def test_report_json_markdown_and_atomic_save(tmp_path: Path):
    report = EvalReport(
        scores={"qa": {"exact_match": 50.0, "token_f1": 62.5}, "sts": {"pearson": 0.91234}},
        examples={
            "qa": [{"inputs": "question: who | why?\nnew line", "target": "Ann", "prediction": "Bob"}],
            "sts": [],
        },
        num_examples={"qa": 2, "sts": 4},
        seconds={"qa": 0.5, "sts": 0.25},
        split="test",
        settings={"batch_size": 8},
        model="ckpt",
    )
    md = report.to_markdown()
    assert "| qa | exact_match | 50.00 | 2 |" in md and "| qa | token_f1 | 62.50 | 2 |" in md
    assert "| sts | pearson | 0.9123 | 4 |" in md
    assert "| question: who \\| why? new line | Ann | Bob |" in md  # one line per row, pipes escaped
    out = report.save(tmp_path / "eval")
    data = json.loads((out / "eval.json").read_text())
    assert data["scores"] == report.scores and data["model"] == "ckpt" and data["num_examples"]["sts"] == 4
    assert (out / "eval.md").read_text() == md
    assert sorted(p.name for p in out.iterdir()) == ["eval.json", "eval.md"]  # no temporary files left


def test_cut_prompts_give_one_warning_per_task(tokenizer):
    from t2t.generation.text import TruncationWarning

    model = _model(tokenizer, "decoder")  # 64 positions: 60 for the prompt with 4 new tokens
    long = " ".join(["the quick brown fox"] * 40)
    rows = [
        {"inputs": long, "targets": "x"},
        {"inputs": "short one", "targets": "x"},
        {"inputs": long, "targets": "y"},
    ]
    with pytest.warns(TruncationWarning) as caught:
        report = evaluate(model, tokenizer, [_task("long", rows)], max_new_tokens=4, progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(messages) == 1 and messages[0].startswith("2 of 3 prompts were longer than the model takes")
    assert report.truncated == {"long": 2} and report.to_json()["truncated"] == {"long": 2}
