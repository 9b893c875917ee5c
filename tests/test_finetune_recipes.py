"""Recipes end to end on tiny models: features and batches of each task and family, the loop (learning a
separable task, freezing the encoder), pretraining then fine-tuning from its directory, and the CLI."""

from __future__ import annotations

import json
import random

import pytest

from t2t.cli.main import main
from t2t.errors import ConfigError
from t2t.finetune.builtin import corpus_tokenizer
from t2t.finetune.collate import collate
from t2t.finetune.loop import freeze_backbone
from t2t.finetune.pretrain import causal_lm_features, mlm_nsp_features
from t2t.finetune.recipe import load_recipe, recipe_names
from t2t.finetune.run import finetune, recipe_model

TINY = ["tokenizer_vocab_size=400", "model_overrides={}", "max_length=64", "eval_batch_size=16"]


def quick(name: str, *overrides: str):
    return load_recipe(name, [*TINY, "data.limit_train=64", "data.limit_test=24", "max_steps=3", *overrides])


def test_every_builtin_recipe_loads():
    names = recipe_names()
    assert {
        "bert-sentiment",
        "bert-qa",
        "bert-tagging",
        "gpt-paraphrase",
        "bert-pretrain",
        "gpt-pretrain",
    } <= set(names)
    for name in names:
        recipe = load_recipe(name)
        assert recipe.name == name


def test_recipe_errors_are_one_line():
    with pytest.raises(ConfigError, match="has no GPT form"):
        load_recipe("bert-tagging", ["family=gpt"])
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rat' \(did you mean 'learning_rate'\?\)"):
        load_recipe("bert-sentiment", ["learning_rat=1"])


def test_collate_pads_sequences_choices_and_token_labels():
    flat = collate(
        [{"input_ids": [5, 6, 7], "labels": [1, 2, 3]}, {"input_ids": [5], "labels": [4]}], pad_id=0
    )
    assert flat["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert flat["labels"].tolist() == [[1, 2, 3], [4, -100, -100]]
    assert flat["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    grouped = collate(
        [{"input_ids": [[1, 2], [3]], "labels": 1}, {"input_ids": [[4], [5, 6, 7]], "labels": 0}], 9
    )
    assert grouped["input_ids"].shape == (2, 2, 3) and grouped["labels"].tolist() == [1, 0]
    assert grouped["attention_mask"][1].tolist() == [[1, 0, 0], [1, 1, 1]]


@pytest.mark.parametrize(
    "name",
    [
        "bert-paraphrase",
        "bert-similarity",
        "bert-choice",
        "bert-tagging",
        "bert-qa",
        "gpt-entailment",
        "gpt-paraphrase",
        "gpt-choice",
    ],
)
def test_each_task_runs_and_scores(name):
    recipe = quick(name)
    result = finetune(recipe)
    assert set(result.scores) >= set(recipe.metric_names) | (
        {"entity_f1"} if recipe.task == "tagging" else set()
    )
    assert all(v == v for v in result.scores.values())  # no NaN
    assert result.steps == 3 and result.test_examples == 24 and len(result.losses) == 1


def _separable(tmp_path):
    """Sentences whose class is a word in them: a model that learns anything gets it right."""
    rng = random.Random(0)
    filler = ["the", "a", "of", "and", "to", "in", "he", "she", "went", "came", "saw", "said"]
    for split, n in (("train", 240), ("test", 60)):
        rows = ["sentence\tlabel"]
        for _ in range(n):
            label = rng.choice(["positive", "negative"])
            words = rng.choices(filler, k=6)
            words.insert(rng.randrange(7), "good" if label == "positive" else "bad")
            rows.append(f"{' '.join(words)}\t{label}")
        (tmp_path / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return [f"data.train={tmp_path / 'train.tsv'}", f"data.test={tmp_path / 'test.tsv'}", "dropout=0"]


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_a_separable_task_is_learnt(family, tmp_path):
    data = _separable(tmp_path)[:2]
    model = "bert-tiny" if family == "bert" else "gpt2-tiny"
    recipe = load_recipe(
        f"{family}-sentiment",
        [*TINY, *data, f"model={model}", "epochs=3", "learning_rate=0.003", "batch_size=16"],
    )
    result = finetune(recipe)
    assert result.scores["accuracy"] >= 95.0, result


def test_frozen_encoder_trains_the_head_only():
    recipe = quick("bert-sentiment")
    tokenizer = corpus_tokenizer("wordpiece", 400)
    model = recipe_model(recipe, tokenizer, 2, None)
    trainable = freeze_backbone(model)
    assert trainable == sum(
        p.numel() for n, p in model.named_parameters() if n.startswith(("classifier", "pooler"))
    )
    result = finetune(quick("bert-sentiment", "freeze_encoder=true"))
    assert result.trainable_parameters < result.parameters / 2


def test_pretraining_features():
    tokenizer = corpus_tokenizer("wordpiece", 400)
    lines = [f"line {k} of the text, with some words in it and more words after" for k in range(200)]
    features = mlm_nsp_features(lines, tokenizer, 64, 0.15, seed=0)
    chosen = sum(label != -100 for f in features for label in f["labels"])
    pieces = sum(len(f["labels"]) - 3 for f in features)
    assert 0.12 < chosen / pieces < 0.18
    masked = sum(i == tokenizer.mask_id for f in features for i in f["input_ids"])
    assert 0.74 < masked / chosen < 0.86
    assert 0.4 < sum(f["next_sentence_label"] for f in features) / len(features) < 0.6
    documents = ["a b c", "d e f", "", "g h i", "j k l", "m n o"]  # a blank line ends a document
    assert len(mlm_nsp_features(documents, tokenizer, 32, 0.15, seed=0)) == 3
    bpe = corpus_tokenizer("bpe", 400)
    blocks = causal_lm_features(lines, bpe, 32)
    assert (
        all(len(b["input_ids"]) == 32 for b in blocks[:-1]) and blocks[0]["labels"] == blocks[0]["input_ids"]
    )


@pytest.mark.slow
def test_pretrain_then_finetune_from_the_directory(tmp_path):
    out = tmp_path / "bert"
    pre = finetune(
        load_recipe("bert-pretrain", [*TINY, "data.limit_train=300", "max_steps=4", f"output_dir={out}"])
    )
    assert set(pre.scores) == {"mlm_accuracy", "nsp_accuracy"}
    assert json.loads((out / "results.json").read_text())["steps"] == 4
    qa = finetune(quick("bert-qa", f"model={out}", "model_overrides={}"))
    assert "exact_match" in qa.scores and qa.parameters < pre.parameters  # MLM head gone, span head added
    gpt = finetune(
        load_recipe(
            "gpt-pretrain", [*TINY, "data.limit_train=300", "max_steps=4", f"output_dir={tmp_path / 'g'}"]
        )
    )
    assert gpt.scores["perplexity"] > 1
    choice = finetune(quick("gpt-choice", f"model={tmp_path / 'g'}"))
    assert choice.family == "gpt" and "accuracy" in choice.scores


def test_cli_runs_a_recipe_and_reports_errors(capsys, tmp_path):
    assert (
        main(
            [
                "finetune",
                "--recipe",
                "bert-sentiment",
                *TINY,
                "data.limit_train=32",
                "data.limit_test=8",
                "max_steps=2",
                "--quiet",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 2 and "accuracy" in result["scores"]
    argv = ["finetune", "--quiet", "data.limit_train=16", "--json", "--recipe", "bert-sentiment", *TINY]
    assert main([*argv, "data.limit_test=4", "max_steps=1"]) == 0  # overrides on both sides of options
    result = json.loads(capsys.readouterr().out)
    assert (result["steps"], result["train_examples"], result["test_examples"]) == (1, 16, 4)
    assert main(["finetune", "--recipe", "bert-sentimnt"]) == 2
    assert "did you mean 'bert-sentiment'" in capsys.readouterr().err
    bad = tmp_path / "r.yaml"
    bad.write_text("name: r\ntask: classification\ndata: {train: missing.tsv, test: missing.tsv}\n")
    assert main(["finetune", "--recipe", str(bad), "--quiet"]) == 2
    assert "missing.tsv: no such file" in capsys.readouterr().err
