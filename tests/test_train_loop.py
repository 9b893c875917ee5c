"""Trainer.fit on a tiny encoder-decoder: learning, accumulation = large batch, clipping, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

import t2t
from t2t.train import Trainer, read_metrics
from test_train_support import ToyStream, config, make_batch, tiny_model


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_fit_learns_and_writes_run_dir(tmp_path):
    model = tiny_model()
    result = Trainer(config(tmp_path, max_steps=30), model=model, train_stream=ToyStream()).fit()
    assert result.step == 30 and len(result.losses) == 30
    assert sum(result.losses[-5:]) / 5 < sum(result.losses[:5]) / 5 - 0.3
    run = tmp_path / "run"
    records = read_metrics(run)
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, 31))
    assert {"loss", "lr", "tokens_per_s", "grad_norm"} <= set(records[0])
    assert (run / "config.yaml").is_file() and any((run / "tensorboard").iterdir())
    # the final checkpoint is a model directory from_pretrained loads, with the same weights
    loaded = t2t.from_pretrained(result.last_checkpoint)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    summary = json.loads((result.last_checkpoint / "trainer_state.json").read_text())
    assert summary["step"] == 30


def _step_gradients(tmp_path, stream, accum, optim="adamw"):
    """Gradients handed to the optimizer at each step (captured by a global step pre-hook)."""
    grads: list[dict[str, torch.Tensor]] = []
    model = tiny_model(seed=1)
    names = {id(p): n for n, p in model.named_parameters()}

    def capture(optimizer, args, kwargs):
        grads.append({names[id(p)]: p.grad.clone() for g in optimizer.param_groups for p in g["params"]})

    handle = register_optimizer_step_pre_hook(capture)
    try:
        cfg = config(tmp_path, max_steps=3, grad_accum_steps=accum, optim={"name": optim, "grad_clip": 0.0})
        Trainer(cfg, model=model, train_stream=stream).fit()
    finally:
        handle.remove()
    return grads, _weights(model)


def _split_stream(rows_per_micro: int, micro: int) -> ToyStream:
    """The rows of ToyStream(rows_per_micro * micro) cut into `micro` consecutive micro-batches."""

    class Split(ToyStream):
        def __next__(self):
            big = ToyStream(rows_per_micro * micro, max_len=12, seed=3).global_rows(self.position // micro)
            part = self.position % micro
            self.position += 1
            return make_batch(big[part * rows_per_micro : (part + 1) * rows_per_micro], "encoder-decoder")

    return Split(rows_per_micro)


@pytest.mark.slow
@pytest.mark.parametrize("optim", ["adamw", "adafactor"])
def test_accumulation_gives_the_large_batch_update(tmp_path, optim):
    big_grads, big = _step_gradients(tmp_path / "big", ToyStream(8, max_len=12, seed=3), 1, optim)
    acc_grads, acc = _step_gradients(tmp_path / "acc", _split_stream(2, 4), 4, optim)
    assert len(big_grads) == len(acc_grads) == 3
    for step_big, step_acc in zip(big_grads, acc_grads):
        for key in step_big:
            torch.testing.assert_close(step_acc[key], step_big[key], rtol=1e-4, atol=1e-7, msg=key)
    for key in big:
        torch.testing.assert_close(acc[key], big[key], rtol=0, atol=1e-5, msg=key)


def test_per_micro_batch_averaging_would_differ():
    """The check above can fail: averaging micro-batch means (not token-normalised) gives another gradient."""
    model = tiny_model(seed=1)
    rows = ToyStream(8, max_len=12, seed=3).global_rows(0)
    model.zero_grad()
    model(**make_batch(rows, "encoder-decoder")).loss.backward()
    exact = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    for part in range(4):
        (model(**make_batch(rows[2 * part : 2 * part + 2], "encoder-decoder")).loss / 4).backward()
    diff = max(
        float((p.grad - exact[n]).abs().max() / exact[n].abs().max()) for n, p in model.named_parameters()
    )
    assert diff > 1e-3


def test_grad_clip_bounds_the_update_and_logs_the_norm(tmp_path):
    model = tiny_model()
    before = _weights(model)
    cfg = config(tmp_path, max_steps=1, optim={"name": "adamw", "lr": 0.0, "grad_clip": 1e-3})
    Trainer(cfg, model=model, train_stream=ToyStream()).fit()
    (record,) = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert record["grad_norm"] > 1e-3  # the pre-clipping norm is what is logged
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())  # lr 0: no change


def test_label_smoothing_raises_the_loss_of_a_confident_model(tmp_path):
    plain = Trainer(config(tmp_path / "a", max_steps=2), model=tiny_model(), train_stream=ToyStream()).fit()
    smooth = Trainer(
        config(tmp_path / "b", max_steps=2, label_smoothing=0.1), model=tiny_model(), train_stream=ToyStream()
    ).fit()
    assert smooth.losses[0] != pytest.approx(plain.losses[0], abs=1e-4)


def test_bf16_autocast_trains(tmp_path):
    result = Trainer(
        config(tmp_path, max_steps=3, bf16=True), model=tiny_model(), train_stream=ToyStream()
    ).fit()
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert result.skipped_steps == 0


def test_keep_last_prunes_old_checkpoints(tmp_path):
    cfg = config(tmp_path, max_steps=6, checkpoint={"every": 1, "keep_last": 2})
    Trainer(cfg, model=tiny_model(), train_stream=ToyStream()).fit()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["last", "step-000005", "step-000006"]


def test_decoder_only_model_trains(tmp_path):
    model = tiny_model("gpt2-tiny")
    stream = ToyStream(arch="decoder", vocab=model.config.vocab_size)
    result = Trainer(config(tmp_path, max_steps=4), model=model, train_stream=stream).fit()
    assert result.losses[-1] < result.losses[0]


def test_finite_stream_ends_training(tmp_path):
    result = Trainer(
        config(tmp_path, max_steps=50), model=tiny_model(), train_stream=ToyStream(limit=3)
    ).fit()
    assert result.step == 3 and result.last_checkpoint.name == "step-000003"


def test_bert_masked_lm_and_next_sentence_losses(tmp_path):
    """Encoder models: MLM tokens normalised by masked tokens, NSP by rows."""
    model = tiny_model("bert-tiny")
    g = torch.Generator().manual_seed(0)

    class MLMStream(ToyStream):
        def __next__(self):
            self.position += 1
            ids = torch.randint(5, model.config.vocab_size, (4, 12), generator=g)
            labels = torch.full_like(ids, -100)
            labels[:, 2:5] = ids[:, 2:5]
            return {
                "input_ids": ids.masked_fill(labels != -100, 4),
                "attention_mask": torch.ones_like(ids),
                "token_type_ids": torch.zeros_like(ids),
                "labels": labels,
                "next_sentence_label": torch.randint(0, 2, (4,), generator=g),
            }

    stream = MLMStream()
    batch = MLMStream().__next__()
    g.manual_seed(0)
    with torch.no_grad():
        expected = float(model(**batch).loss)  # BertForPreTraining: mean MLM + mean NSP
    result = Trainer(config(tmp_path, max_steps=1), model=model, train_stream=stream).fit()
    assert result.losses[0] == pytest.approx(expected, rel=1e-5)
