"""Each pretraining objective chosen by name (data.objective) trains a tiny model on a real stream.

The first step's loss equals the model's own loss on the first batch of the same stream built
directly (so the trainer normalises each objective as the model does), and a few steps lower it.
"""

from __future__ import annotations

import pytest

from t2t.cli.main import main
from t2t.train import Trainer, read_metrics
from t2t.train import build as train_build
from test_train_support import text_config, train_tokenizer, write_text_data

CASES = {
    "prefix_lm-t5": ("prefix_lm", "t5-tiny", "sentencepiece", 200),
    "prefix_lm-gpt2": ("prefix_lm", "gpt2-tiny", "bpe", 400),
    "causal_lm-gpt2": ("causal_lm", "gpt2-tiny", "bpe", 400),
    "mlm_nsp-bert": ("mlm_nsp", "bert-tiny", "wordpiece", 200),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("objectives")
    write_text_data(root)
    kinds = {(kind, size) for _, _, kind, size in CASES.values()}
    return root, {kind: train_tokenizer(root, kind, size) for kind, size in kinds}


def _config(data, tmp_path, objective, preset, kind, **fields):
    root, tokenizers = data
    return text_config(
        root,
        tokenizers[kind],
        run_dir=str(tmp_path / "run"),
        max_steps=6,
        model={"preset": preset},
        data={"task": "docs", "objective": objective, "max_input_length": 32, "max_target_length": 16},
        **fields,
    )


def _first_batch_loss(cfg) -> float:
    """The model the Trainer builds (same seed), scored on the first batch of a stream built directly."""
    import torch

    trainer = Trainer(cfg)  # builds the model and stream; nothing runs before fit()
    stream = train_build.build_stream(
        cfg, trainer.tokenizer, trainer.model.config.arch, train_build.source_of(cfg)
    )
    with torch.no_grad():
        return float(trainer.model(**next(iter(stream))).loss)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_objective_by_name_trains(data, tmp_path, case):
    objective, preset, kind, _ = CASES[case]
    cfg = _config(data, tmp_path, objective, preset, kind)
    expected = _first_batch_loss(cfg)
    result = Trainer(cfg).fit()
    assert result.step == 6 and result.skipped_steps == 0
    assert result.losses[0] == pytest.approx(expected, rel=1e-5)
    assert result.losses[-1] < result.losses[0]


def test_objective_through_t2t_train(data, tmp_path):
    """The same kind of run from a recipe file and `t2t train` overrides (causal LM on a GPT-2 shape)."""
    recipe = tmp_path / "recipe.yaml"
    _config(data, tmp_path, "prefix_lm", "t5-tiny", "sentencepiece").save(recipe)
    overrides = ["data.objective=causal_lm", "model.preset=gpt2-tiny", f"model.tokenizer={data[1]['bpe']}"]
    expected = _first_batch_loss(_config(data, tmp_path, "causal_lm", "gpt2-tiny", "bpe"))
    assert main(["train", "--config", str(recipe), *overrides]) == 0
    losses = [r["loss"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert len(losses) == 6 and losses[0] == pytest.approx(expected, rel=1e-5) and losses[-1] < losses[0]
