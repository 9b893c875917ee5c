"""Recipes end to end on tiny models, all through the one Trainer: features and batches of each task
and family, learning a separable task, freezing the encoder, pretraining then fine-tuning from its run
directory, t2t 0.1 recipe names as aliases, and the CLI."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest
import torch

import t2t
from t2t.cli.main import main
from t2t.errors import ConfigError
from t2t.finetune.builtin import corpus_tokenizer
from t2t.finetune.collate import collate
from t2t.finetune.features import prepare
from t2t.finetune.pretrain import causal_lm_features, mlm_nsp_features
from t2t.finetune.recipe import recipe_names
from t2t.tokenizer import load_tokenizer
from t2t.train import Trainer
from t2t.train.heads import freeze_backbone, head_spec
from t2t.train.recipes import load_recipe

TINY = [
    "model.tokenizer_vocab_size=400",
    "model.overrides={}",
    "data.max_input_length=64",
    "eval.batch_size=16",
    "progress=false",
    "tensorboard=false",
]


def quick(name: str, run_dir: Path, *overrides: str):
    limits = ["data.limit_train=64", "data.limit_eval=24", "epochs=10", "max_steps=3"]  # max_steps decides
    return load_recipe(name, [*TINY, *limits, f"run_dir={run_dir}", *overrides])


def fit(cfg) -> tuple[Trainer, t2t.train.TrainResult]:
    trainer = Trainer(cfg)
    return trainer, trainer.fit()


def test_every_builtin_recipe_is_a_training_config():
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
        cfg = load_recipe(name)
        assert cfg.run_dir == f"runs/{name}" and cfg.data.train.startswith("builtin:")
        assert cfg.epochs and cfg.max_steps is None  # epochs decide the length
        assert t2t.train.TrainConfig.load(Path("configs/finetune") / f"{name}.yaml") == cfg


def test_recipe_errors_are_one_line():
    with pytest.raises(ConfigError, match="has no GPT form"):
        Trainer(load_recipe("bert-tagging", ["model.preset=gpt2-tiny", *TINY]))
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lrr' \(did you mean 'lr'\?\)"):
        load_recipe("bert-sentiment", ["optim.lrr=1"])


def test_t2t_01_recipes_and_keys_still_read_with_a_warning(tmp_path, caplog):
    old = tmp_path / "old.yaml"
    old.write_text(
        "name: old\ntask: span-qa\nfamily: bert\nmodel: bert-tiny\nlearning_rate: 0.002\nwarmup: 0.2\n"
        "data: {train: builtin:qa/train.json, test: builtin:qa/test.json, limit_test: 5}\n"
        "doc_stride: 32\noutput_dir: runs/x\n"
    )
    with caplog.at_level(logging.WARNING, logger="t2t"):
        cfg = load_recipe(old, ["learning_rate=0.003", "model=runs/bert", "output_dir=runs/y"])
    assert cfg.data.objective == "span_qa" and cfg.optim.lr == 0.003 and cfg.schedule.warmup_ratio == 0.2
    assert cfg.data.options == {"doc_stride": 32} and cfg.data.limit_eval == 5 and cfg.eval.split == "test"
    assert cfg.model.checkpoint == "runs/bert" and cfg.model.preset is None and cfg.run_dir == "runs/y"
    assert cfg.epochs == 3.0 and cfg.data.batch_size == 32  # t2t 0.1's defaults
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "t2t 0.1 recipe" in warned and "learning_rate= is now optim.lr=" in warned


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
def test_each_task_runs_and_scores(name, tmp_path):
    cfg = quick(name, tmp_path / "run")
    trainer, result = fit(cfg)
    spec = head_spec(cfg, trainer.model.config.arch)
    assert set(result.final_metrics) >= set(spec.metric_names)
    if name == "bert-acceptability":
        scores = result.final_metrics
        assert set(scores) == {"accuracy", "matthews"} and -1.0 <= scores["matthews"] <= 1.0
    assert all(v == v for v in result.final_metrics.values())  # no NaN
    assert result.step == 3 and len(result.losses) == 3
    assert (result.last_checkpoint / "trainer_state.safetensors").is_file()  # the Trainer's checkpoint


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
    return [f"data.train={tmp_path / 'train.tsv'}", f"data.test={tmp_path / 'test.tsv'}"]


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_a_separable_task_is_learnt(family, tmp_path):
    data = _separable(tmp_path)
    model = "bert-tiny" if family == "bert" else "gpt2-tiny"
    cfg = load_recipe(
        f"{family}-sentiment",
        [
            *TINY,
            *data,
            f"model.preset={model}",
            "epochs=3",
            "optim.lr=0.003",
            "data.batch_size=16",
            f"run_dir={tmp_path / 'run'}",
        ],
    )
    _, result = fit(cfg)
    assert result.final_metrics["accuracy"] >= 95.0, result


def test_frozen_encoder_trains_the_head_only(tmp_path):
    """model.freeze_encoder=true: after training, every backbone tensor is bit-identical and the head
    moved."""
    cfg = quick("bert-sentiment", tmp_path / "run", "model.freeze_encoder=true", "optim.lr=0.01")
    trainer = Trainer(cfg)
    model = trainer.model
    head = ("classifier", "pooler")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(p.numel() for n, p in model.named_parameters() if n.startswith(head))
    assert trainable < sum(p.numel() for p in model.parameters()) / 2
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert trainer.fit().step == 3
    after = dict(model.named_parameters())
    frozen = [n for n in before if not n.startswith(head)]
    assert frozen and all(torch.equal(before[n], after[n]) for n in frozen)
    assert all(not torch.equal(before[n], after[n]) for n in before if n.startswith(head))
    with pytest.raises(ConfigError, match="leaves nothing to train"):
        freeze_backbone(torch.nn.Sequential(torch.nn.Linear(2, 2)))


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
    first = prepare(head_spec(pairs, "encoder"), tokenizer).train[0]
    rows = [(first["input_ids"], first["token_type_ids"], a, b)]
    feature = prepare(head_spec(choice, "encoder"), tokenizer).train[0]
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


def test_a_bad_device_is_a_config_error_naming_the_key(capsys, tmp_path):
    assert (
        main(["finetune", "--recipe", "bert-sentiment", "device=foo", f"run_dir={tmp_path}", "--quiet"]) == 2
    )
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
def test_pretrain_then_finetune_from_the_run_directory(tmp_path):
    bert_dir, gpt_dir = tmp_path / "bert", tmp_path / "gpt"
    pre = ["data.limit_train=300", "max_steps=4", *TINY]
    bert, result = fit(load_recipe("bert-pretrain", [*pre, f"run_dir={bert_dir}"]))
    assert set(result.final_metrics) == {"mlm_accuracy", "nsp_accuracy"}
    qa_cfg = quick("bert-qa", tmp_path / "qa", "model.preset=null", f"model.checkpoint={bert_dir}")
    qa, qa_result = fit(qa_cfg)
    assert "exact_match" in qa_result.final_metrics and qa.model.config.task_head == "span-qa"
    for key in ("d_model", "n_encoder_layers", "max_positions", "vocab_size"):  # the pretrained backbone
        assert getattr(qa.model.config, key) == getattr(bert.model.config, key), key
    _, gpt = fit(load_recipe("gpt-pretrain", [*pre, f"run_dir={gpt_dir}"]))
    assert gpt.final_metrics["perplexity"] > 1
    choice, result = fit(
        quick("gpt-choice", tmp_path / "choice", "model.preset=null", f"model.checkpoint={gpt_dir}")
    )
    assert choice.model.config.arch == "decoder" and "accuracy" in result.final_metrics


def test_cli_runs_a_recipe_and_reports_errors(capsys, tmp_path):
    run = ["finetune", "--recipe", "bert-sentiment", *TINY, "data.limit_train=32", "data.limit_eval=8"]
    assert main([*run, "max_steps=2", f"run_dir={tmp_path / 'a'}", "--quiet", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 2 and "accuracy" in result["scores"]
    assert json.loads((tmp_path / "a" / "results.json").read_text())["scores"] == result["scores"]
    argv = ["finetune", "--quiet", "data.limit_train=16", "--json", "--recipe", "bert-sentiment", *TINY]
    assert main([*argv, "data.limit_eval=4", "max_steps=1", f"run_dir={tmp_path / 'b'}"]) == 0
    result = json.loads(capsys.readouterr().out)  # overrides on both sides of options
    assert (result["steps"], result["train_examples"]) == (1, 16)
    assert main(["finetune", "--recipe", "bert-sentimnt"]) == 2
    assert "did you mean 'bert-sentiment'" in capsys.readouterr().err
    bad = tmp_path / "r.yaml"
    bad.write_text(
        "data: {objective: classification, train: missing.tsv, test: missing.tsv}\nmodel: {preset: bert-tiny}\n"
    )
    assert main(["finetune", "--recipe", str(bad), "--quiet", f"run_dir={tmp_path / 'c'}"]) == 2
    assert "eval.split=validation scores the model on data.validation" in capsys.readouterr().err
    assert (
        main(["finetune", "--recipe", str(bad), "eval.split=test", "--quiet", f"run_dir={tmp_path / 'c'}"])
        == 2
    )
    assert "missing.tsv" in capsys.readouterr().err


def test_t2t_train_runs_a_recipe_file(tmp_path, capsys):
    argv = ["train", "--config", "configs/finetune/bert-sentiment.yaml", *TINY, "data.limit_train=16"]
    assert main([*argv, "data.limit_eval=8", "max_steps=2", f"run_dir={tmp_path}"]) == 0
    assert "best accuracy" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "hf_class"),
    [
        ("bert-sentiment", "BertForSequenceClassification"),
        ("bert-tagging", "BertForTokenClassification"),
        ("bert-qa", "BertForQuestionAnswering"),
    ],
)
def test_checkpoint_format_hf_loads_in_transformers(name, hf_class, tmp_path):
    """checkpoint.format=hf writes the head model as transformers' class with a tokenizer it reads: the
    same token ids (and segment ids) and the same outputs as the t2t model."""
    import transformers

    _, result = fit(quick(name, tmp_path / "run", "checkpoint.format=hf"))
    out = result.last_checkpoint
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


def test_checkpoint_format_hf_without_a_transformers_class_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"checkpoint\.format=hf: a decoder with head='classification'"):
        Trainer(quick("gpt-sentiment", tmp_path / "g", "checkpoint.format=hf"))
    assert not (tmp_path / "g").exists()


def test_model_overrides_may_set_positions_but_not_below_max_length(tmp_path):
    wide = Trainer(quick("bert-sentiment", tmp_path / "a", "model.overrides={max_positions: 512}"))
    assert wide.model.config.max_positions == 512
    with pytest.raises(
        ConfigError, match=r"max_input_length=64 is longer than model\.overrides' max_positions=32"
    ):
        Trainer(quick("bert-sentiment", tmp_path / "b", "model.overrides={max_positions: 32}"))
