"""Non-finite steps are skipped and counted; a run of them stops training without touching good checkpoints."""

from __future__ import annotations

import pytest
import torch

import t2t
from t2t.train import Trainer, TrainingDiverged, read_metrics
from test_train_support import ToyStream, config, tiny_model


class PoisonAt:
    """Forward hook that turns the logits into NaN at the given optimizer steps (1-based)."""

    def __init__(self, steps: set[int]) -> None:
        self.steps, self.calls = steps, 0

    def __call__(self, module, args, output):
        self.calls += 1
        if self.calls in self.steps:
            output.logits = output.logits * float("nan")
        return output


def test_nan_steps_are_skipped_and_counted(tmp_path):
    model = tiny_model()
    model.register_forward_hook(PoisonAt({3, 4}))
    result = Trainer(config(tmp_path, max_steps=6), model=model, train_stream=ToyStream()).fit()
    assert result.skipped_steps == 2 and result.step == 6
    records = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert [r["step"] for r in records if r.get("skipped")] == [3, 4]
    assert records[-1]["skipped_steps"] == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_steps_leave_the_weights_unchanged(tmp_path):
    model = tiny_model()
    model.register_forward_hook(PoisonAt({1}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(config(tmp_path, max_steps=1), model=model, train_stream=ToyStream()).fit()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_inf_gradient_with_a_finite_loss_is_skipped_and_counted(tmp_path):
    model = tiny_model()
    calls = {"n": 0}

    def poison(grad: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return grad * float("inf") if calls["n"] == 2 else grad  # the backward pass of step 2

    weight = next(m for m in model.modules() if isinstance(m, torch.nn.Linear)).weight
    weight.register_hook(poison)
    snapshots = []

    class Recorder(ToyStream):  # the weights before each step's batch is drawn
        def __next__(self):
            snapshots.append(weight.detach().clone())
            return super().__next__()

    result = Trainer(config(tmp_path, max_steps=3), model=model, train_stream=Recorder()).fit()
    assert result.skipped_steps == 1 and result.step == 3
    records = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert [r["step"] for r in records if r.get("skipped")] == [2]
    assert isinstance(records[1]["loss"], float) and records[1]["grad_norm"] == "inf"
    assert records[1]["skipped_steps"] == 1
    assert torch.equal(snapshots[1], snapshots[2])  # step 2 changed nothing
    assert not torch.equal(snapshots[0], snapshots[1]) and not torch.equal(snapshots[2], weight)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_too_many_bad_steps_stop_and_keep_the_last_good_checkpoint(tmp_path):
    model = tiny_model()
    model.register_forward_hook(PoisonAt(set(range(5, 100))))
    cfg = config(tmp_path, max_steps=20, max_bad_steps=3, checkpoint={"every": 2, "keep_last": 1})
    with pytest.raises(
        TrainingDiverged, match=r"step 7: 3 steps in a row .* last good checkpoint is .*step-000004"
    ):
        Trainer(cfg, model=model, train_stream=ToyStream()).fit()
    ckpts = tmp_path / "run" / "checkpoints"
    assert (ckpts / "last").resolve().name == "step-000004"
    loaded = t2t.from_pretrained(ckpts / "last")
    assert all(torch.isfinite(p).all() for p in loaded.parameters())


def test_non_finite_weights_are_never_saved(tmp_path):
    from t2t.errors import CheckpointError
    from t2t.train.checkpoint import save_checkpoint

    model = tiny_model()
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    with pytest.raises(CheckpointError, match="not finite"):
        save_checkpoint(tmp_path, 1, model, None, {}, {})
    assert not any(tmp_path.iterdir())
