"""Task, registry, YAML declarations, templates and mixture rates."""

from __future__ import annotations

import collections
import itertools
import json
from pathlib import Path

import pytest

from t2t.data import (
    Mixture,
    Task,
    classification_task,
    get_mixture,
    get_task,
    list_tasks,
    load_tasks_yaml,
    mixing_rates,
    qa_task,
    reasoning_task,
    register_task,
    summarization_task,
    translation_task,
)
from t2t.data.mixtures import cycle_examples
from t2t.errors import ConfigError, DataError

QUICKSTART = Path(__file__).resolve().parents[1] / "data" / "builtin" / "quickstart"


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def numbered(tmp_path: Path, name: str, n: int) -> Path:
    return jsonl(tmp_path / f"{name}.jsonl", [{"inputs": f"{name} {i}", "targets": str(i)} for i in range(n)])


def test_task_prefix_splits_and_passthrough(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    jsonl(folder / "train.jsonl", [{"inputs": "a", "targets": "b", "answers": ["b", "B"]}])
    jsonl(folder / "validation.jsonl", [{"inputs": "c", "targets": "d"}])
    task = Task("t", folder, prefix="do: ", metrics=["exact_match"], postprocess=str.upper)
    assert task.splits == ("train", "validation")
    assert list(task.examples()) == [{"inputs": "do: a", "targets": "b", "answers": ["b", "B"]}]
    assert list(task.examples("validation")) == [{"inputs": "do: c", "targets": "d"}]
    assert task.postprocess(" x ") == " X "
    with pytest.raises(DataError, match=r"no split 'valid'.*did you mean 'validation'"):
        list(task.examples("valid"))


def test_task_errors_name_the_record(tmp_path):
    path = jsonl(
        tmp_path / "d.jsonl",
        [{"inputs": "a", "targets": "b"}, {"inputs": "a"}, {"inputs": "c", "targets": 1}],
    )
    with pytest.raises(DataError, match=r'd\.jsonl:2: no "targets" field'):
        list(Task("t", path).examples())
    skipping = Task("t", path, skip_bad_records=True)
    assert list(skipping.examples()) == [{"inputs": "a", "targets": "b"}]
    assert skipping.skipped["train"] == 2
    with pytest.raises(DataError, match=r"d\.jsonl:1: task 't' needs field 'sentence'"):
        list(Task("t", path, preprocess=lambda r: {"inputs": r["sentence"], "targets": "x"}).examples())


def test_callable_source_and_text_records(tmp_path):
    task = Task("gen", lambda split: [{"inputs": f"{split} {i}", "targets": "t"} for i in range(3)])
    assert [e["inputs"] for e in task.examples()] == ["train 0", "train 1", "train 2"]
    assert task.num_examples() == 3
    assert [e["inputs"] for e in task.examples(start=2)] == ["train 2"]
    corpus = tmp_path / "c.txt"
    corpus.write_text("one\ntwo\n", encoding="utf-8")
    assert list(Task("c", corpus).examples()) == [
        {"text": "one", "inputs": "one", "targets": ""},
        {"text": "two", "inputs": "two", "targets": ""},
    ]


def test_registry_and_closest_name(tmp_path):
    task = register_task(Task("reg_alpha", numbered(tmp_path, "a", 2)))
    assert get_task("reg_alpha") is task
    assert "reg_alpha" in list_tasks()
    with pytest.raises(DataError, match="did you mean 'reg_alpha'"):
        get_task("reg_alpah")
    with pytest.raises(DataError, match="already registered"):
        register_task(Task("reg_alpha", numbered(tmp_path, "b", 1)))
    register_task(Task("reg_alpha", numbered(tmp_path, "b", 1)), overwrite=True)


def test_templates_on_builtin_data(tmp_path):
    sentiment = classification_task("s", QUICKSTART / "sentiment")
    first = next(sentiment.examples())
    assert first["inputs"].startswith("classify sentiment: ")
    assert first["targets"] in ("positive", "negative")
    assert sentiment.metrics == ("accuracy",)
    translation = next(translation_task("tr", QUICKSTART / "translate").examples())
    assert translation["inputs"].startswith("translate English to German: ")
    assert next(summarization_task("su", QUICKSTART / "summarize").examples())["inputs"].startswith(
        "summarize: "
    )
    assert next(reasoning_task("re", QUICKSTART / "reasoning").examples())["inputs"].startswith("reasoning: ")
    rows = [{"question": "Where?", "context": "In Paris.", "answers": ["Paris", "paris"]}, {"q": 1}]
    squad = jsonl(tmp_path / "qa.jsonl", rows[:1])
    assert list(qa_task("qa", squad).examples()) == [
        {"inputs": "question: Where? context: In Paris.", "targets": "Paris", "answers": ["Paris", "paris"]}
    ]
    assert next(qa_task("cb", squad, context_field=None).examples())["inputs"] == "question: Where?"
    labels = jsonl(tmp_path / "l.jsonl", [{"sentence": "good", "label": 1}])
    named = classification_task(
        "l", labels, text_field="sentence", label_field="label", label_names=["neg", "pos"]
    )
    assert list(named.examples()) == [{"inputs": "classify sentiment: good", "targets": "pos"}]


def test_yaml_declarations(tmp_path):
    numbered(tmp_path, "ya", 4)
    jsonl(tmp_path / "yb.jsonl", [{"sentence": "s", "label": "l"}])
    (tmp_path / "tasks.yaml").write_text(
        "tasks:\n"
        "  - {name: yaml_a, source: ya.jsonl, template: reasoning}\n"
        "  - name: yaml_b\n"
        "    source: {train: yb.jsonl}\n"
        "    prefix: 'b: '\n"
        "    fields: {inputs: sentence, targets: label}\n"
        "    metrics: [accuracy]\n"
        "mixtures:\n"
        "  - {name: yaml_mix, tasks: [yaml_a, yaml_b], rate: equal}\n",
        encoding="utf-8",
    )
    tasks = load_tasks_yaml(tmp_path / "tasks.yaml")
    assert [t.name for t in tasks] == ["yaml_a", "yaml_b"]
    assert next(get_task("yaml_a").examples())["inputs"] == "reasoning: ya 0"
    assert list(get_task("yaml_b").examples()) == [{"inputs": "b: s", "targets": "l"}]
    assert get_task("yaml_b").metrics == ("accuracy",)
    assert get_mixture("yaml_mix").rates == {"yaml_a": 0.5, "yaml_b": 0.5}
    (tmp_path / "bad.yaml").write_text(
        "tasks:\n  - {name: x, source: ya.jsonl, prefx: 'a'}\n", encoding="utf-8"
    )
    with pytest.raises(
        ConfigError,
        match=r"bad\.yaml: tasks\[0\] \(task 'x'\): unknown key 'prefx' \(did you mean 'prefix'\?\)",
    ):
        load_tasks_yaml(tmp_path / "bad.yaml")


def test_named_postprocessors():
    from t2t.data.postprocess import POSTPROCESSORS, named_postprocess

    text = "  Positive.  It is\nnice  "
    expected = {
        "strip": "Positive.  It is\nnice",
        "lower": "positive.  it is\nnice",
        "first_word": "Positive.",
        "first_line": "Positive.  It is",
        "strip_punctuation": "Positive.  It is\nnice",
        "none": text,
    }
    assert {name: f(text) for name, f in POSTPROCESSORS.items()} == expected
    assert POSTPROCESSORS["strip_punctuation"](" «yes»?! ") == "«yes»"  # only ASCII punctuation goes
    assert POSTPROCESSORS["first_word"]("   ") == ""
    chain = named_postprocess(["first_word", "strip_punctuation", "lower"])
    assert chain("  Positive. It is nice") == "positive"
    assert Task("named", lambda split: [], postprocess="lower").postprocess(" A B ") == "a b"
    with pytest.raises(
        ConfigError, match=r"task 'bad': unknown postprocess 'lowr' \(did you mean 'lower'\?\)"
    ):
        Task("bad", lambda split: [], postprocess=["strip", "lowr"])
    with pytest.raises(ConfigError, match=r"postprocess should be a name or a list of names"):
        named_postprocess([])


def test_yaml_postprocess(tmp_path):
    numbered(tmp_path, "pp", 2)
    (tmp_path / "pp.yaml").write_text(
        "tasks:\n"
        "  - {name: pp_plain, source: pp.jsonl, postprocess: lower}\n"
        "  - {name: pp_chain, source: pp.jsonl, postprocess: [first_line, strip_punctuation, lower]}\n"
        "  - {name: pp_template, source: pp.jsonl, template: classification, postprocess: first_word}\n"
        "  - {name: pp_default, source: pp.jsonl}\n",
        encoding="utf-8",
    )
    load_tasks_yaml(tmp_path / "pp.yaml", overwrite=True)
    answer = " Positive!\nand more "
    got = {
        name: get_task(name).postprocess(answer)
        for name in ("pp_plain", "pp_chain", "pp_template", "pp_default")
    }
    assert got == {
        "pp_plain": "positive!\nand more",
        "pp_chain": "positive",
        "pp_template": "Positive!",
        "pp_default": "Positive!\nand more",
    }
    (tmp_path / "bad_pp.yaml").write_text(
        "tasks:\n  - {name: pp_bad, source: pp.jsonl, postprocess: [strip, frist_word]}\n", encoding="utf-8"
    )
    with pytest.raises(
        ConfigError,
        match=r"bad_pp\.yaml: tasks\[0\] \(task 'pp_bad'\): unknown postprocess 'frist_word' "
        r"\(did you mean 'first_word'\?\); known: strip, lower",
    ):
        load_tasks_yaml(tmp_path / "bad_pp.yaml")


def test_mixing_rates_as_in_t5():
    sizes = {"a": 100, "b": 1000, "c": 10000}
    assert mixing_rates(sizes, rate="equal") == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert mixing_rates(sizes) == pytest.approx({"a": 100 / 11100, "b": 1000 / 11100, "c": 10000 / 11100})
    capped = mixing_rates(sizes, cap=1000)
    assert capped == pytest.approx({"a": 100 / 2100, "b": 1000 / 2100, "c": 1000 / 2100})
    hot = mixing_rates(sizes, rate="temperature", cap=1000, temperature=2.0)
    total = 100**0.5 + 2 * 1000**0.5
    assert hot == pytest.approx({"a": 10 / total, "b": 1000**0.5 / total, "c": 1000**0.5 / total})
    assert mixing_rates(sizes, rate="temperature", temperature=1.0) == pytest.approx(mixing_rates(sizes))


def _weights(sizes: tuple[int, ...], power: float) -> list[float]:
    total = sum(n**power for n in sizes)
    return [n**power / total for n in sizes]


@pytest.mark.parametrize(
    ("rate", "options", "expected"),
    [
        ("proportional", {"cap": 200}, [20 / 280, 60 / 280, 200 / 280]),
        ("proportional", {}, [20 / 580, 60 / 580, 500 / 580]),
        ("equal", {}, [1 / 3, 1 / 3, 1 / 3]),
        ("temperature", {"cap": 200, "temperature": 2.0}, _weights((20, 60, 200), 1 / 2)),
        ("temperature", {"temperature": 3.0}, _weights((20, 60, 500), 1 / 3)),
    ],
)
def test_sampled_proportions_match_the_rates(tmp_path, rate, options, expected):
    """20,000 draws: each task's share within 4 standard errors of its rate (0.005 to 0.014); any two of
    these settings differ by more than that for some task, so a sampler that ignored one would fail."""
    sizes = (("m1", 20), ("m2", 60), ("m3", 500))
    tasks = [Task(n, numbered(tmp_path, n, size)) for n, size in sizes]
    mixture = Mixture("mix", tasks, rate=rate, **options)
    assert list(mixture.rates.values()) == pytest.approx(expected)
    draws = 20000
    counts = collections.Counter(e["task"] for e in itertools.islice(mixture.examples(seed=3), draws))
    for (name, _), rate_m in zip(sizes, expected, strict=True):
        tolerance = 4 * (rate_m * (1 - rate_m) / draws) ** 0.5
        assert abs(counts[name] / draws - rate_m) < tolerance, (name, counts[name] / draws, rate_m)


def test_mixture_is_deterministic_and_resumes(tmp_path):
    tasks = [Task(n, numbered(tmp_path, n, size)) for n, size in (("m1", 20), ("m2", 60), ("m3", 500))]
    mixture = Mixture("mix", tasks, rate="proportional", cap=200)
    sample = list(itertools.islice(mixture.examples(seed=3), 10000))
    # every task repeats in file order (m1 has 20 examples: it comes round many times)
    m1 = [e["targets"] for e in sample if e["task"] == "m1"]
    assert m1[:25] == [str(i % 20) for i in range(25)]
    again = list(itertools.islice(mixture.examples(seed=3), 300))
    assert again == sample[:300]
    assert list(itertools.islice(mixture.examples(seed=4), 300)) != again
    # starting at a position gives the same continuation, across draw blocks too
    for start in (7, 4100, 9000):
        assert list(itertools.islice(mixture.examples(seed=3, start=start), 50)) == sample[start : start + 50]


def test_mixture_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"rate='proportionl' is not one of.*did you mean 'proportional'"):
        Mixture("x", [Task("a", numbered(tmp_path, "a", 1))], rate="proportionl")
    with pytest.raises(DataError, match="no task named 'missing_task'"):
        Mixture("x", ["missing_task"])


def test_shuffled_epochs_are_permutations_and_resume(tmp_path):
    task = Task("sh", numbered(tmp_path, "sh", 10))
    run = [e["targets"] for e in itertools.islice(cycle_examples(task, "train", 0, shuffle_seed=1), 30)]
    for epoch in range(3):
        assert sorted(run[epoch * 10 : epoch * 10 + 10], key=int) == [str(i) for i in range(10)]
    assert run[:10] != run[10:20] and run[:10] != [str(i) for i in range(10)]
    for start in (3, 10, 17):
        again = [
            e["targets"] for e in itertools.islice(cycle_examples(task, "train", start, shuffle_seed=1), 8)
        ]
        assert again == run[start : start + 8]
    mixture = Mixture("shm", [task, Task("sh2", numbered(tmp_path, "sh2", 7))])
    first = list(itertools.islice(mixture.examples(seed=2, shuffle=True), 40))
    assert list(itertools.islice(mixture.examples(seed=2, start=13, shuffle=True), 20)) == first[13:33]


def test_yaml_hub_sources_with_config(tmp_path, monkeypatch):
    """The docs/data.md example: a template task on a hub dataset's config, a split per hub split."""
    datasets = pytest.importorskip("datasets")
    calls = []

    def load_dataset(name, config=None, *, split=None, streaming=False):
        calls.append((name, config, split, streaming))
        return iter([{"sentence": f"{split} text", "label": 1, "idx": 0}])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    (tmp_path / "hub.yaml").write_text(
        "tasks:\n"
        "  - name: hub_sst2\n"
        "    template: classification\n"
        '    source: {train: "hf:nyu-mll/glue/sst2:train", validation: "hf:nyu-mll/glue/sst2:validation"}\n'
        "    text_field: sentence\n"
        "    label_field: label\n"
        "    label_names: [negative, positive]\n"
        "    postprocess: strip_punctuation\n",
        encoding="utf-8",
    )
    (task,) = load_tasks_yaml(tmp_path / "hub.yaml", overwrite=True)
    assert list(task.examples("validation")) == [
        {"inputs": "classify sentiment: validation text", "targets": "positive", "idx": 0}
    ]
    assert calls == [("nyu-mll/glue", "sst2", "validation", True)]
    assert task.postprocess(" positive. ") == "positive"
