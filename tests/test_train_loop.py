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


def _step_gradients(tmp_path, stream, accum, optim="adamw", grad_clip=0.0, steps=3):
    """Gradients handed to the optimizer at each step (captured by a global step pre-hook)."""
    grads: list[dict[str, torch.Tensor]] = []
    model = tiny_model(seed=1)
    names = {id(p): n for n, p in model.named_parameters()}

    def capture(optimizer, args, kwargs):
        grads.append({names[id(p)]: p.grad.clone() for g in optimizer.param_groups for p in g["params"]})

    handle = register_optimizer_step_pre_hook(capture)
    try:
        cfg = config(
            tmp_path, max_steps=steps, grad_accum_steps=accum, optim={"name": optim, "grad_clip": grad_clip}
        )
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


def _first_step_gradients(tmp_path, grad_clip: float) -> tuple[dict[str, torch.Tensor], float]:
    """The gradients the optimizer sees at step 1 (after clipping) and the logged pre-clipping norm."""
    grads, _ = _step_gradients(tmp_path, ToyStream(8, max_len=12, seed=3), 1, grad_clip=grad_clip, steps=1)
    (record,) = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    return grads[0], record["grad_norm"]


def _total_norm(grads: dict[str, torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()])))


def test_grad_clip_scales_the_gradients_the_optimizer_sees(tmp_path):
    raw, raw_norm = _first_step_gradients(tmp_path / "raw", grad_clip=0.0)
    clip = 0.05
    clipped, logged = _first_step_gradients(tmp_path / "clipped", grad_clip=clip)
    assert logged == pytest.approx(raw_norm, rel=1e-6) == pytest.approx(_total_norm(raw), rel=1e-5)
    assert raw_norm > 10 * clip  # so clipping has something to do
    assert _total_norm(clipped) <= clip * (1 + 1e-5)
    assert _total_norm(clipped) == pytest.approx(clip, rel=1e-4)
    for key, grad in raw.items():  # the same direction, scaled by clip / norm
        torch.testing.assert_close(clipped[key], grad * (clip / raw_norm), rtol=1e-4, atol=1e-9, msg=key)
    # a bound above the norm leaves the gradients as they are
    loose, _ = _first_step_gradients(tmp_path / "loose", grad_clip=10 * raw_norm)
    for key, grad in raw.items():
        torch.testing.assert_close(loose[key], grad, rtol=1e-5, atol=1e-9, msg=key)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_label_smoothing_is_the_smoothed_cross_entropy_of_the_batch(tmp_path, smoothing):
    model = tiny_model()
    batch = ToyStream().batch(0)
    with torch.no_grad():
        logits = model(**batch).logits
    expected = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100, label_smoothing=smoothing
    )
    cfg = config(tmp_path, max_steps=1, label_smoothing=smoothing)
    result = Trainer(cfg, model=model, train_stream=ToyStream()).fit()
    assert result.losses[0] == pytest.approx(float(expected), rel=1e-5)
    if smoothing:  # and it is not the plain loss
        plain = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())
        assert abs(float(expected) - float(plain)) > 1e-2


def test_progress_bar_shows_loss_lr_throughput_and_eta(tmp_path, capsys):
    cfg = config(
        tmp_path, max_steps=3, progress=True, scheduled_sampling={"schedule": "constant", "max_prob": 0.1}
    )
    Trainer(cfg, model=tiny_model(), train_stream=ToyStream()).fit()
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "3/3" in last and "<00:00" in last  # steps done / total, elapsed < ETA
    for key in ("loss=", "lr=1.00e-02", "tok_s=", "ss_p=0.100"):
        assert key in last, last


def _output_dtypes(tmp_path, bf16: bool) -> tuple[set[torch.dtype], list[float], torch.nn.Module]:
    """Output dtypes of every Linear and attention module during training, and the losses."""
    model = tiny_model()
    seen: set[torch.dtype] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ == "Attention":
            module.register_forward_hook(
                lambda m, args, out: seen.add((out[0] if isinstance(out, tuple) else out).dtype)
            )
    result = Trainer(config(tmp_path, max_steps=3, bf16=bf16), model=model, train_stream=ToyStream()).fit()
    return seen, result.losses, model


def test_bf16_autocast_runs_the_matmuls_in_bfloat16(tmp_path):
    seen, losses, model = _output_dtypes(tmp_path / "bf16", bf16=True)
    assert seen == {torch.bfloat16}  # every projection and attention output
    assert all(torch.isfinite(torch.tensor(losses)))
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # weights stay fp32
    plain, plain_losses, _ = _output_dtypes(tmp_path / "fp32", bf16=False)
    assert plain == {torch.float32}
    assert losses[0] == pytest.approx(plain_losses[0], rel=2e-2) and losses[0] != plain_losses[0]


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
