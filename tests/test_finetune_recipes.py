"""Recipes end to end on tiny models: features and batches of each task and family, the loop (learning a
separable task, freezing the encoder), pretraining then fine-tuning from its directory, and the CLI."""

from __future__ import annotations

import json
import random

import pytest
import torch

import t2t
from t2t.cli.main import main
from t2t.errors import ConfigError
from t2t.finetune.builtin import corpus_tokenizer
from t2t.finetune.collate import collate
from t2t.finetune.features import prepare
from t2t.finetune.loop import freeze_backbone
from t2t.finetune.pretrain import causal_lm_features, mlm_nsp_features
from t2t.finetune.recipe import load_recipe, recipe_names
from t2t.finetune.run import finetune, recipe_model, train_recipe
from t2t.tokenizer import load_tokenizer

TINY = ["tokenizer_vocab_size=400", "model_overrides={}", "max_length=64", "eval_batch_size=16"]


def quick(name: str, *overrides: str):
    limits = ["data.limit_train=64", "data.limit_test=24", "epochs=10", "max_steps=3"]  # max_steps decides
    return load_recipe(name, [*TINY, *limits, *overrides])


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
        "bert-sentiment",
        "bert-acceptability",
        "bert-entailment",
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
    if name == "bert-acceptability":
        assert set(result.scores) == {"accuracy", "matthews"} and -1.0 <= result.scores["matthews"] <= 1.0
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
    """freeze_encoder=true: after training, every backbone tensor is bit-identical and the head moved."""
    recipe = quick("bert-sentiment", "freeze_encoder=true", "learning_rate=0.01")
    tokenizer = corpus_tokenizer("wordpiece", 400)
    data = prepare(recipe, tokenizer)
    model = recipe_model(recipe, tokenizer, data.num_labels, data.label_names)
    trainable = freeze_backbone(model)
    head = ("classifier", "pooler")
    assert trainable == sum(p.numel() for n, p in model.named_parameters() if n.startswith(head))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    stats = train_recipe(recipe, model, data.train, torch.device("cpu"))
    assert stats.trainable_parameters == trainable and stats.steps == 3
    after = dict(model.named_parameters())
    frozen = [n for n in before if not n.startswith(head)]
    assert frozen and all(torch.equal(before[n], after[n]) for n in frozen)
    assert all(not torch.equal(before[n], after[n]) for n in before if n.startswith(head))
    result = finetune(recipe)
    assert result.trainable_parameters == trainable < result.parameters / 2


def test_bert_pairs_get_segment_ids_0_then_1(tmp_path):
    """[CLS] A [SEP] is segment 0 and B [SEP] segment 1, in sentence pairs and in each choice."""
    tokenizer = corpus_tokenizer("wordpiece", 400)
    a, b = "the king went up to the city", "and the people followed him"
    (tmp_path / "p.tsv").write_text(f"s1\ts2\tlabel\n{a}\t{b}\t1\n{b}\t{a}\t0\n", encoding="utf-8")
    choices = {"context": a, "endings": [b, "yes", "he said so"], "label": 0}
    (tmp_path / "c.jsonl").write_text(json.dumps(choices) + "\n", encoding="utf-8")
    files = [f"data.train={tmp_path / 'p.tsv'}", f"data.test={tmp_path / 'p.tsv'}"]
    pairs = load_recipe("bert-paraphrase", [*TINY, *files, "data.text_field=s1", "data.pair_field=s2"])
    choice = load_recipe(
        "bert-choice", [*TINY, f"data.train={tmp_path / 'c.jsonl'}", f"data.test={tmp_path / 'c.jsonl'}"]
    )
    first = prepare(pairs, tokenizer).train[0]
    rows = [(first["input_ids"], first["token_type_ids"], a, b)]
    feature = prepare(choice, tokenizer).train[0]
    rows += [
        (ids, types, a, ending)
        for ids, types, ending in zip(feature["input_ids"], feature["token_type_ids"], choices["endings"])
    ]
    assert len(rows) == 4
    for ids, types, x, y in rows:
        x_ids = tokenizer.encode(x, add_special_tokens=False)
        y_ids = tokenizer.encode(y, add_special_tokens=False)
        assert ids == [tokenizer.cls_id, *x_ids, tokenizer.sep_id, *y_ids, tokenizer.sep_id]
        assert types == [0] * (len(x_ids) + 2) + [1] * (len(y_ids) + 1)
    batch = collate([first], pad_id=0)
    assert batch["token_type_ids"].tolist() == [first["token_type_ids"]]  # the model receives them


def test_a_bad_device_is_a_config_error_naming_the_key(capsys):
    with pytest.raises(ConfigError, match=r"^device='foo' is not a device; use cpu, cuda"):
        finetune(quick("bert-sentiment", "device=foo"))
    assert main(["finetune", "--recipe", "bert-sentiment", "device=foo", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "device='foo'" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def _originals(feature: dict) -> list[int]:
    """A masked feature's tokens before masking."""
    return [t if label == -100 else label for t, label in zip(feature["input_ids"], feature["labels"])]


def test_pretraining_features():
    """BERT's examples come from t2t.data (pairs filling the sequence, 80/10/10 masking); a blank line
    ends a document, so a true next sentence never crosses into another."""
    tokenizer = corpus_tokenizer("wordpiece", 400)
    rng = random.Random(0)
    words = ["the", "king", "city", "sheep", "field", "went", "came", "said", "and", "of", "his", "day"]
    lines = [" ".join(rng.choices(words, k=14)) if k % 20 else "" for k in range(200)]  # 10 documents
    features = mlm_nsp_features(lines, tokenizer, 64, 0.15, seed=0)
    assert all(len(f["input_ids"]) <= 64 for f in features)
    chosen = sum(label != -100 for f in features for label in f["labels"])
    pieces = sum(len(f["labels"]) - 3 for f in features)
    assert 0.12 < chosen / pieces < 0.18
    masked = sum(i == tokenizer.mask_id for f in features for i in f["input_ids"])
    assert 0.7 < masked / chosen < 0.9
    assert 0.3 < sum(f["next_sentence_label"] for f in features) / len(features) < 0.7
    assert mlm_nsp_features(lines, tokenizer, 64, 0.15, seed=0) == features  # seeded
    texts = {"king": "the king and the city", "sheep": "the sheep in the field"}
    documents = [texts["king"]] * 4 + [""] + [texts["sheep"]] * 4
    vocab = {k: set(tokenizer.encode(v, add_special_tokens=False)) for k, v in texts.items()}
    for f in mlm_nsp_features(documents, tokenizer, 32, 0.15, seed=0):
        ids = [t for t in _originals(f) if t not in tokenizer.special_ids]
        one_document = any(set(ids) <= v for v in vocab.values())
        assert one_document == (f["next_sentence_label"] == 0), f
    bpe = corpus_tokenizer("bpe", 400)
    blocks = causal_lm_features(lines, bpe, 32)
    assert (
        all(len(b["input_ids"]) == 32 for b in blocks[:-1]) and blocks[0]["labels"] == blocks[0]["input_ids"]
    )
    stream = [t for b in blocks for t in b["input_ids"]]
    assert stream.count(bpe.eos_id) == sum(map(bool, lines))  # each line ends with the end-of-text token


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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "hf_class"),
    [
        ("bert-sentiment", "BertForSequenceClassification"),
        ("bert-tagging", "BertForTokenClassification"),
        ("bert-qa", "BertForQuestionAnswering"),
    ],
)
def test_save_format_hf_loads_in_transformers(name, hf_class, tmp_path):
    """save_format=hf writes the head model as transformers' class with a tokenizer it reads: the same
    token ids (and segment ids) and the same outputs as the t2t model."""
    import transformers

    out = tmp_path / "run"
    finetune(quick(name, f"output_dir={out}", "save_format=hf"))
    assert (out / "config.json").exists() and not (out / "t2t_config.json").exists()
    ours, tokenizer = t2t.from_pretrained(out).eval(), load_tokenizer(out)
    theirs = getattr(transformers, hf_class).from_pretrained(out).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    question, context = "Who went up to the city?", "The king went up to the city with his people."
    encoded = hf_tokenizer(question, context, return_tensors="pt")
    pair = tokenizer.encode_pair(question, context)
    assert encoded["input_ids"][0].tolist() == pair.ids
    assert encoded["token_type_ids"][0].tolist() == pair.token_type_ids
    with torch.no_grad():
        a, b = theirs(**encoded), ours(**encoded)
    keys = ["start_logits", "end_logits"] if name == "bert-qa" else ["logits"]
    for key in keys:
        assert torch.allclose(getattr(a, key), getattr(b, key), atol=1e-5), key
    if name == "bert-sentiment":
        assert theirs.config.id2label == {0: "negative", 1: "positive"}


def test_save_format_hf_without_a_transformers_class_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match="save_format=hf: a decoder with head='classification'"):
        finetune(quick("gpt-sentiment", f"output_dir={tmp_path / 'g'}", "save_format=hf"))
    assert not (tmp_path / "g").exists()


def test_model_overrides_may_set_positions_but_not_below_max_length():
    tokenizer = corpus_tokenizer("wordpiece", 400)
    wide = recipe_model(
        load_recipe("bert-sentiment", ["model_overrides={max_positions: 512}"]), tokenizer, 2, None
    )
    assert wide.config.max_positions == 512
    with pytest.raises(ConfigError, match="max_length=64 is longer than model_overrides max_positions=32"):
        recipe_model(
            load_recipe("bert-sentiment", ["model_overrides={max_positions: 32}"]), tokenizer, 2, None
        )
