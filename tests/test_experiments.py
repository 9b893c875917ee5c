"""The experiments lab's pieces, each on a hand-made case: the divergence detector (on runs forced to
diverge), the error rate by output position, gradient norms by block, the residual rewiring, the KV-cache
measure, equal-parameter matching, the statistics, the specs of every shipped experiment, the
pretraining objectives' batches, the data shares and the self-training loop."""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest
import torch

from t2t.config import ModelConfig
from t2t.errors import ConfigError
from t2t.experiments import analysis, measures, stats
from t2t.experiments.models import model_config, parameters_of
from t2t.experiments.procedures import run_unit
from t2t.experiments.run import Context, train_and_measure
from t2t.experiments.self_training import SelfTrainingConfig, confident, self_train
from t2t.experiments.spec import DataSpec, ExperimentSpec, Unit, list_experiments, load_spec
from t2t.experiments.surgery import set_residual
from t2t.experiments.synthetic import EOS, SyntheticStream, SyntheticTask, make_batch
from t2t.model.build import build_model
from t2t.presets import preset

SHIPPED = (
    "attention",
    "exposure_bias",
    "mixing",
    "norm_position",
    "norms",
    "objectives",
    "residual",
    "self_training",
    "transfer",
)


def _unit(**train) -> Unit:
    return Unit(
        variant="v",
        point={},
        seed=0,
        model={"preset": "gpt2-tiny", "n_layers": 2, "dropout": 0.0},
        train={"max_steps": 12, "optim": {"name": "adamw", "lr": 1e-3, "grad_clip": 0.0}, **train},
        data={
            "kind": "synthetic",
            "task": "reverse",
            "vocab": 16,
            "min_length": 2,
            "max_length": 5,
            "batch_size": 8,
        },
    )


def _context(tmp_path, **measure) -> dict:
    return asdict(Context(runs=str(tmp_path), measure={"every": 3, **measure}))


# ------------------------------------------------------------------------------------------ divergence
def test_loss_diverged_on_hand_made_curves() -> None:
    assert measures.loss_diverged([3.0, 2.0, 1.0], initial=3.0) is None
    assert measures.loss_diverged([3.0, float("nan")], initial=3.0) == "non-finite loss"
    assert measures.loss_diverged([3.0, float("inf")]) == "non-finite loss"
    assert measures.loss_diverged([3.0, float("inf"), 2.0, 1.0]) is None  # one skipped step is not divergence
    assert "exploded" in measures.loss_diverged([3.0, 8.0, 9.0, 10.0], initial=3.0)
    assert measures.loss_diverged([3.0, 8.0, 3.5], initial=3.0) is None  # the end is what counts
    assert measures.final_loss([4.0] * 10 + [1.0, 2.0] * 5) == pytest.approx(1.5)


def test_a_run_forced_to_diverge_is_counted_diverged_not_crashed(tmp_path) -> None:
    healthy = run_unit(asdict(_unit()), _context(tmp_path / "a", watchdog=3.0))
    assert healthy["status"] == "ok" and healthy["metrics"]["diverged"] == 0.0
    assert len(healthy["curves"]["loss"]) == 12 and healthy["curves"]["probe_steps"] == [3, 6, 9, 12]
    forced = _unit(optim={"name": "adamw", "lr": 1e4, "grad_clip": 0.0})
    record = run_unit(asdict(forced), _context(tmp_path / "b", watchdog=3.0))
    assert record["status"] == "diverged" and record["metrics"]["diverged"] == 1.0
    assert "initial" in record["reason"]  # the watchdog stopped it ...
    assert record["metrics"]["steps"] < 12  # ... before the end


def test_the_trainers_own_stop_is_counted_diverged(tmp_path) -> None:
    """Non-finite weights: every step is skipped, and after max_bad_steps the Trainer raises
    TrainingDiverged; the run's record says diverged, with the Trainer's line."""
    unit = _unit()
    model = build_model(
        preset("gpt2-tiny").replace(vocab_size=16, pad_id=0, eos_id=1, bos_id=None, n_decoder_layers=2)
    )
    with torch.no_grad():
        model.decoder.layers[0].ffn_norm.weight.fill_(float("nan"))
    record = {"metrics": {}, "curves": {}, "status": "ok"}
    ctx = Context(runs=str(tmp_path), measure={"every": 0})
    train_and_measure(unit, ctx, record, tmp_path / "run", model=model)
    assert record["status"] == "diverged"
    assert "in a row" in record["reason"]
    assert record["metrics"]["steps"] == 5  # max_bad_steps


# -------------------------------------------------------------------------------- errors by position
def test_position_errors_on_a_hand_made_case() -> None:
    targets = [[5, 6, 1], [5, 6, 7, 1], [5, 6, 1]]
    predictions = [[5, 6, 1], [5, 7, 8, 1], [9]]
    rates, counts = measures.position_errors(predictions, targets)
    assert counts == [3, 3, 3, 1]
    assert rates == pytest.approx([1 / 3, 2 / 3, 2 / 3, 0.0])
    scores = measures.sequence_scores(predictions, targets)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["token_accuracy"] == pytest.approx(100 * 5 / 10)  # 1 - the errors above, 5 of 10
    assert measures.cut_at_eos([4, 5, 1, 7, 1], 1) == [4, 5, 1]
    assert measures.cut_at_eos([4, 5], 1) == [4, 5]


@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_teacher_forced_predictions_line_up_with_the_labels(arch: str) -> None:
    task = SyntheticTask("reverse", 16, 2, 6)
    pairs = task.examples(5, seed=0)
    batch = make_batch(pairs, arch)
    name = "t5-tiny" if arch == "encoder-decoder" else "gpt2-tiny"
    model = build_model(
        preset(name).replace(
            vocab_size=16, pad_id=0, eos_id=1, bos_id=None, decoder_start_id=0 if arch != "decoder" else None
        )
    ).eval()
    gold = measures.label_rows(batch, arch)
    assert gold == [[*y, EOS] for _, y in pairs]
    forced = measures.teacher_forced_predictions(model, batch)
    assert [len(f) for f in forced] == [len(g) for g in gold]
    logits = model(**batch).logits
    first = logits[0, 0] if arch != "decoder" else logits[0, len(pairs[0][0])]  # predicts y[0]
    assert forced[0][0] == int(first.argmax())


# ------------------------------------------------------------------------------------ gradients, surgery
def test_grad_norms_by_layer_match_a_backward_pass() -> None:
    model = build_model(preset("t5-tiny").replace(dropout=0.0, vocab_size=16, pad_id=0, eos_id=1))
    batch = make_batch(SyntheticTask("copy", 16, 2, 5).examples(4, seed=1), "encoder-decoder")
    norms = measures.grad_norms_by_layer(model, batch)
    names = [n for n, _ in measures.blocks(model)]
    assert names == ["encoder.0", "encoder.1", "decoder.0", "decoder.1"]
    assert all(p.grad is None for p in model.parameters())  # the probe leaves no gradients behind
    model(**batch).loss.backward()
    for norm, (_, block) in zip(norms, measures.blocks(model), strict=True):
        expected = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in block.parameters()))
        assert norm == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("position", ["pre", "post"])
def test_residual_rewiring_as_built_changes_nothing(position: str) -> None:
    config = preset("t5-tiny").replace(dropout=0.0, norm_position=position)
    model = build_model(config).eval()
    batch = make_batch(SyntheticTask("reverse", 64, 3, 6).examples(3, seed=2), "encoder-decoder")
    before = model(**batch).logits
    assert set_residual(model, "standard") == {"residual": 1.0, "branch": 1.0}
    assert torch.equal(model(**batch).logits, before)
    assert set_residual(model, "scaled")["branch"] == pytest.approx(1 / math.sqrt(4))
    assert not torch.allclose(model(**batch).logits, before)
    assert set_residual(model, "none")["residual"] == 0.0
    with pytest.raises(ConfigError, match="residual='skip' is not one of"):
        set_residual(model, "skip")


# --------------------------------------------------------------------------------- attention measures
def test_kv_cache_bytes_follow_the_key_value_heads() -> None:
    base = preset("llama-tiny").replace(n_heads=4, n_kv_heads=None, n_decoder_layers=3)
    for kv in (4, 2, 1):
        model = build_model(base.replace(n_kv_heads=kv))
        expected = 2 * 3 * kv * base.dim_head * 2 * 10 * 4  # keys and values, layers, heads, dim, B, T, fp32
        assert measures.kv_cache_bytes(model, batch_size=2, length=10) == expected
    assert measures.decode_speed(model, batch_size=2, prompt_length=3, new_tokens=4, repeats=1) > 0


def test_match_parameters_of_widens_d_ff_to_equal_parameters() -> None:
    data = DataSpec(kind="synthetic", vocab=32)
    model = {
        "preset": "llama-tiny",
        "d_model": 64,
        "n_heads": 8,
        "head_dim": 8,
        "d_ff": 128,
        "match_parameters_of": {"n_kv_heads": None},
    }
    mha = model_config({**model, "n_kv_heads": None}, data, None)
    for kv in (2, 1):
        config = model_config({**model, "n_kv_heads": kv}, data, None)
        assert config.d_ff > mha.d_ff
        per_unit = parameters_of(config.replace(d_ff=config.d_ff + 1)) - parameters_of(config)
        assert abs(parameters_of(config) - parameters_of(mha)) <= per_unit // 2 + 1


def test_model_config_takes_the_data_ids_and_every_stacks_depth() -> None:
    config = model_config(
        {"preset": "t5-small", "d_model": 64, "n_heads": 4, "n_layers": 3}, DataSpec(vocab=20), None
    )
    assert isinstance(config, ModelConfig)
    assert (config.n_encoder_layers, config.n_decoder_layers, config.head_dim) == (3, 3, 16)
    assert (config.vocab_size, config.pad_id, config.eos_id, config.decoder_start_id) == (20, 0, 1, 0)


# ------------------------------------------------------------------------------------------- statistics
def test_compare_calls_only_separated_samples_clear() -> None:
    assert stats.compare([10.0, 10.2, 9.9], [5.0, 5.1, 4.8])["clear"] == 1.0
    assert stats.compare([10.0, 6.0, 8.0], [7.0, 9.0, 8.5])["clear"] == 0.0
    assert stats.compare([10.0], [1.0])["clear"] == 0.0  # one seed supports nothing
    assert stats.compare([2.0, 2.0], [1.0, 1.0])["clear"] == 1.0  # no spread at all
    assert stats.mean_std([1.0, 3.0]) == "2.00 ± 1.41"
    assert stats.mean_std([]) == "-"


def test_lr_sweep_finds_the_largest_rate_that_trains_in_most_seeds() -> None:
    def record(variant: str, lr: float, seed: int, loss: float, status: str = "ok") -> dict:
        return {
            "variant": variant,
            "point": {"train.optim.lr": lr},
            "seed": seed,
            "stage": False,
            "status": status,
            "metrics": {"final_loss": loss},
            "curves": {},
        }

    records = [record("post", 1e-3, s, 1.0) for s in range(3)]
    records += [
        record("post", 1e-2, 0, 1.0),
        record("post", 1e-2, 1, 3.0),
        record("post", 1e-2, 2, 9.0, "diverged"),
    ]
    records += [record("pre", lr, s, 1.0) for lr in (1e-3, 1e-2) for s in range(3)]
    spec = load_spec("norm_position", quick=True)
    result = analysis.lr_sweep(spec, records, {"threshold": 2.0})
    assert result.findings["largest_lr"] == {"post|None|None": 1e-3, "pre|None|None": 1e-2}
    assert result.findings["diverged_share"]["post|None|None"] == pytest.approx(1 / 6)
    assert result.verdict.startswith("pre tolerates larger learning rates than post")


# ------------------------------------------------------------------------------------------------ specs
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_experiment_loads_with_its_budget(name: str) -> None:
    assert name in list_experiments()
    spec = load_spec(name)
    assert spec.seeds >= 3 and spec.budget.minutes <= 20 and spec.budget.estimate
    assert spec.claim and spec.title
    quick = load_spec(name, quick=True)
    assert quick.seeds >= 2 and len(quick.units(quick.seeds)) + len(quick.stage_units(quick.seeds)) <= 12


def test_spec_errors_name_the_key(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nvariants: [{name: a}]\ntrian: {max_steps: 3}\n")
    with pytest.raises(ConfigError, match="unknown key 'trian' \\(did you mean 'train'\\?\\)"):
        load_spec(str(path))
    path.write_text("name: mine\nvariants: [{name: a, init: pretrain}]\n")
    with pytest.raises(ConfigError, match="stage 'pretrain', which stages does not define"):
        load_spec(str(path))
    path.write_text("name: mine\nvariants: [{name: a, model: {d_modle: 3}}]\n")
    with pytest.raises(ConfigError, match="unknown model key 'd_modle' \\(did you mean 'd_model'\\?\\)"):
        load_spec(str(path))
    path.write_text("name: mine\nvariants: [{name: a}]\ntrain: {optim: {lr: -1}}\n")
    with pytest.raises(ConfigError, match=r"optim\.lr=-1\.0 is out of range"):
        load_spec(str(path))
    with pytest.raises(ConfigError, match="no experiment named 'residul' \\(did you mean 'residual'\\?\\)"):
        load_spec("residul")


def test_units_cross_variants_with_the_grid_and_overrides_apply(tmp_path) -> None:
    spec = load_spec(
        "norm_position",
        overrides=["grid.model.n_layers=[2, 4]", "grid.train.optim.lr=[0.1]", "train.max_steps=7"],
    )
    units = spec.units(2)
    assert len(units) == 2 * 2 * 2 * 1 * 2  # variants x layers x warm-ups x rates x seeds
    first = units[0]
    assert first.model["norm_position"] == "post" and first.model["n_layers"] == 2
    assert first.train["optim"]["lr"] == 0.1 and first.train["max_steps"] == 7
    assert first.key == "post-LN_n_layers=2_warmup_steps=0_lr=0.1/seed-0"
    assert isinstance(spec, ExperimentSpec)


# ------------------------------------------------------------------------------------------------- data
def test_synthetic_stream_is_a_function_of_seed_and_position() -> None:
    task = SyntheticTask("sort", 20, 3, 6)
    a, b = SyntheticStream(task, 4, "decoder", seed=3), SyntheticStream(task, 4, "decoder", seed=3)
    next(a)
    b.load_state_dict(a.state_dict())
    assert torch.equal(next(a)["input_ids"], next(b)["input_ids"])
    x, y = task.examples(1, seed=0)[0]
    assert y == sorted(x)


def test_corpus_objectives_cut_the_same_text(tmp_path) -> None:
    from t2t.experiments import textdata
    from t2t.tokenizer import load_tokenizer

    tok = load_tokenizer(textdata.train_vocabulary(tmp_path, 300, 16, 200))
    ids = textdata.corpus_token_ids(textdata.corpus_lines("prose")[:200], tok)
    streams = {
        name: textdata.CorpusObjectiveStream(ids, tok, name, batch_size=4, input_length=24, seed=0)
        for name in ("span_corruption", "bert_mlm", "prefix_lm", "causal_lm")
    }
    raw = streams["causal_lm"].raw_length
    batches = {name: s.batch(0) for name, s in streams.items()}
    causal = batches["causal_lm"]
    assert causal["input_ids"].shape[1] == 1 and int(causal["input_ids"][0, 0]) == tok.eos_id
    assert (causal["labels"][0] != -100).sum() == raw + 1
    mlm = batches["bert_mlm"]
    assert torch.equal(mlm["labels"], causal["labels"])  # the whole chunk, reconstructed
    assert (mlm["input_ids"] != causal["labels"].clamp(min=0)).any()  # some of it masked
    span = batches["span_corruption"]
    assert span["input_ids"].shape[1] == 24  # the corrupted inputs fill input_length
    assert int(span["labels"][0, 0]) == tok.sentinel_id(0)
    prefix = batches["prefix_lm"]
    assert ((prefix["attention_mask"].sum(1) - 1) + (prefix["labels"] != -100).sum(1) - 1 == raw).all()


def test_a_share_of_a_task_and_its_unseen_answers() -> None:
    from t2t.experiments import textdata

    (task,) = textdata.tasks_named(["quickstart_question"])
    sub, rest, unseen = textdata.subset_task(task, 0.01, seed=4)
    kept = list(sub.examples("train"))
    assert len(kept) == math.ceil(0.01 * task.num_examples("train"))
    assert kept == list(textdata.subset_task(task, 0.01, seed=4)[0].examples("train"))
    assert len(kept) + len(rest) == task.num_examples("train")
    seen = set().union(*(textdata.words(e["inputs"]) | textdata.words(e["targets"]) for e in kept))
    assert unseen and all(not (textdata.words(e["targets"]) & seen) for e in unseen)
    assert list(sub.examples("test")) == list(task.examples("test"))


# -------------------------------------------------------------------------------------- self-training
def test_confident_keeps_the_most_confident_share() -> None:
    rows = [({"i": i}, str(i), c) for i, c in enumerate([0.2, 0.9, 0.5, 0.95])]
    assert [a for _, a, _ in confident(rows, 0.5)] == ["1", "3"]
    assert confident([], 0.5) == []


def test_self_train_adds_pseudo_labels_each_round() -> None:
    trained_on: list[list[str]] = []

    def train(examples, r):
        trained_on.append(sorted(e["targets"] for e in examples))
        return r

    def label(model, examples):
        return [(e["inputs"].upper(), 0.1 * k) for k, e in enumerate(examples)]

    labelled = [{"inputs": "a", "targets": "A"}]
    unlabelled = [{"inputs": x, "targets": x.upper()} for x in "bcde"]
    result = self_train(
        train,
        label,
        labelled,
        unlabelled,
        SelfTrainingConfig(rounds=2, keep=0.5, pool=None),
        same=lambda e, a: e["targets"] == a,
    )
    assert trained_on == [["A"], ["A", "D", "E"], ["A", "D", "E"]]
    assert [r["pseudo_kept"] for r in result.rounds] == [0.0, 2.0, 2.0]
    assert result.rounds[1]["pseudo_accuracy"] == 100.0 and result.model == 2


# ----------------------------------------------------------------------------------------------- CLI
def test_cli_lists_every_experiment_and_refuses_a_wrong_name(capsys) -> None:
    from t2t.cli.main import main

    assert main(["experiment", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in SHIPPED:
        assert name in listed
    assert main(["experiment", "residul"]) == 2
    wrong = capsys.readouterr().err.strip()
    assert wrong.startswith("t2t experiment: error: no experiment named 'residul'")
    assert len(wrong.splitlines()) == 1
    assert main(["experiment", "transfer", "--quick", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "stage span_corruption seed 0"
    with pytest.raises(SystemExit) as stop:  # argparse refuses more than 100 seeds
        main(["experiment", "residual", "--seeds", "101", "--dry-run"])
    assert stop.value.code == 2 and "at most 100" in capsys.readouterr().err
