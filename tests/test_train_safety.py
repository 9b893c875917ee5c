"""Checkpoints from others cannot run code, runs are never mixed, resume tells the truth, and a run that
dies or explodes says so instead of exiting 0 with ruined weights."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from t2t.errors import CheckpointError, ConfigError
from t2t.train import Trainer, TrainingDiverged, read_metrics
from t2t.train import checkpoint as ckpt
from t2t.train.resume import resume_changes
from t2t.utils import state_file
from test_train_support import ToyStream, config, tiny_model


def _fit(tmp_path: Path, **fields) -> Trainer:
    trainer = Trainer(config(tmp_path, **fields), model=tiny_model(), train_stream=ToyStream(4))
    trainer.fit()
    return trainer


def _last(tmp_path: Path) -> Path:
    return (tmp_path / "run" / "checkpoints" / "last").resolve()


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


# ------------------------------------------------------------------------------------ no pickle read
class _Payload:
    """Unpickling this calls os.system: what a crafted trainer_state.pt would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_has_no_pickle_and_its_state_round_trips(tmp_path):
    trainer = _fit(tmp_path, max_steps=3)
    last = _last(tmp_path)
    assert not list(last.glob("*.pt")) and not list(last.glob("*.bin"))
    state = ckpt.load_state(last)
    assert state["step"] == 3
    assert isinstance(state["rng"][0]["python"], tuple) and state["rng"][0]["numpy"][1].dtype == np.uint32
    ours = trainer.optimizer.state_dict()
    for index, moments in ours["state"].items():
        for name, value in moments.items():
            assert torch.equal(state["optimizer"]["state"][index][name], value)
    assert state["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_state_file_keeps_every_kind_of_value(tmp_path):
    value = {
        1: {"t": torch.arange(6, dtype=torch.int16).view(2, 3), "f": float("inf"), "n": None},
        "tuple": (1, "a", (2.5, False)),
        "array": np.arange(4, dtype=np.uint32),
        "__tensor__": "a string key that looks like a mark",
    }
    state_file.save_state(value, tmp_path / "s.safetensors")
    back = state_file.load_state(tmp_path / "s.safetensors")
    assert torch.equal(back[1]["t"], value[1]["t"]) and back[1]["f"] == math.inf and back[1]["n"] is None
    assert back["tuple"] == (1, "a", (2.5, False))
    assert back["array"].dtype == np.uint32 and back["array"].tolist() == [0, 1, 2, 3]
    assert back["__tensor__"] == value["__tensor__"]


@pytest.mark.parametrize("content", [b"", b"not safetensors at all", b"\x08\x00\x00\x00\x00\x00\x00\x00{}"])
def test_a_damaged_state_file_is_a_checkpoint_error(tmp_path, content):
    (tmp_path / ckpt.STATE_FILE).write_bytes(content)
    with pytest.raises(CheckpointError, match="not a t2t state file"):
        ckpt.load_state(tmp_path)


def test_a_planted_pickle_is_refused_without_running_it(tmp_path):
    _fit(tmp_path, max_steps=2)
    last = _last(tmp_path)
    (last / ckpt.STATE_FILE).unlink()
    marker = tmp_path / "pwned"
    torch.save({"step": 2, "payload": _Payload(marker)}, last / ckpt.LEGACY_STATE_FILE)
    with pytest.raises(CheckpointError, match="could run code"):
        ckpt.load_state(last)
    with pytest.raises(CheckpointError, match=r"refusing to read this trainer state.*posix\.system"):
        _fit(tmp_path, max_steps=4, resume=True)
    assert not marker.exists()


def test_an_old_pickled_state_still_resumes_exactly(tmp_path):
    straight = _fit(tmp_path / "a", max_steps=6)
    _fit(tmp_path / "b", max_steps=3)
    last = _last(tmp_path / "b")
    torch.save(ckpt.load_state(last), last / ckpt.LEGACY_STATE_FILE)  # what t2t 0.1 wrote
    (last / ckpt.STATE_FILE).unlink()
    _fit(tmp_path / "b", max_steps=6, resume=True)
    ours, theirs = _weights(_last(tmp_path / "b")), _weights(straight.ckpt_root / "step-000006")
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


# --------------------------------------------------------------------------- checkpoints stay whole
def test_saving_a_step_again_swaps_in_one_call(tmp_path, monkeypatch):
    trainer = _fit(tmp_path, max_steps=2)
    root = trainer.ckpt_root
    before = _weights(root / "step-000002")
    model = tiny_model(seed=1)

    real_replace = os.replace

    def guarded(src, dst):  # the old two-rename swap would leave a moment without the step
        if Path(src).name == "step-000002":
            raise AssertionError("a re-save must not rename the old step away first")
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", guarded)
    final = ckpt.save_checkpoint(root, 2, model, None, {"step": 2}, {"step": 2})
    monkeypatch.undo()
    after = _weights(final)
    assert not all(torch.equal(after[k], before[k]) for k in before)
    import t2t

    loaded = t2t.from_pretrained(final).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # the old copy is gone


def test_exploded_weights_are_not_saved_as_good(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        next(model.parameters()).mul_(1e30)
    with pytest.raises(CheckpointError, match=r"has exploded.*no earlier checkpoint exists"):
        ckpt.save_checkpoint(tmp_path, 1, model, None, {"step": 1}, {"step": 1})


# ------------------------------------------------------------------------------------- one run a dir
def test_a_used_run_dir_is_refused_before_any_work(tmp_path):
    _fit(tmp_path, max_steps=2)
    with pytest.raises(ConfigError, match=r"already holds a run .*--resume.*--overwrite"):
        Trainer(config(tmp_path, max_steps=2), model=tiny_model(), train_stream=ToyStream(4))
    with pytest.raises(ConfigError, match="both set"):
        Trainer(config(tmp_path, resume=True, overwrite=True), model=tiny_model(), train_stream=ToyStream(4))


def test_overwrite_replaces_the_run_and_keeps_other_files(tmp_path):
    _fit(tmp_path, max_steps=4)
    notes = tmp_path / "run" / "notes.txt"
    notes.write_text("mine")
    _fit(tmp_path, max_steps=2, overwrite=True)
    steps = [r["step"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert steps == [1, 2]
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step-*")) == ["step-000002"]
    assert notes.read_text() == "mine"


# ------------------------------------------------------------------------------ resume tells the truth
def test_resume_applies_a_new_learning_rate_and_records_it(tmp_path, caplog):
    _fit(tmp_path, max_steps=3)
    with caplog.at_level(logging.INFO, logger="t2t"):
        trainer = _fit(tmp_path, max_steps=5, resume=True, optim={"name": "adamw", "lr": 2e-3})
    assert "optim.lr: 0.01 -> 0.002" in caplog.text
    rates = {r["step"]: r["lr"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"}
    assert (
        rates[3] == pytest.approx(1e-2)
        and rates[4] == pytest.approx(2e-3)
        and rates[5] == pytest.approx(2e-3)
    )
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(2e-3)
    from t2t.train import TrainConfig

    assert TrainConfig.load(tmp_path / "run" / "config.yaml").optim.lr == 2e-3


def test_resume_refuses_a_change_that_makes_it_another_run(tmp_path):
    _fit(tmp_path, max_steps=2)
    with pytest.raises(ConfigError, match=r"^seed=7 differs from the checkpoint's 0"):
        _fit(tmp_path, max_steps=4, resume=True, seed=7)


def test_resume_changes_sorts_keys_into_free_applied_and_fixed():
    saved = {"optim": {"lr": 1.0, "name": "adamw"}, "eval": {"every": 5}, "max_steps": 10, "data": {"x": 1}}
    now = {"optim": {"lr": 0.5, "name": "adamw"}, "eval": {"every": 9}, "max_steps": 20, "data": {"x": 1}}
    assert resume_changes(saved, now) == ["max_steps: 10 -> 20", "optim.lr: 1.0 -> 0.5"]
    with pytest.raises(ConfigError, match=r"data\.x=2"):
        resume_changes(saved, {**now, "data": {"x": 2}})


def test_a_weight_shape_that_changed_is_named_on_resume(tmp_path):
    _fit(tmp_path, max_steps=2)
    wider = tiny_model(preset="t5-tiny")
    wider = type(wider)(wider.config.replace(d_ff=wider.config.d_ff * 2))
    with pytest.raises(CheckpointError, match=r"weight '.*' has shape \(.*\) in the checkpoint but \(.*\)"):
        Trainer(config(tmp_path, max_steps=4, resume=True), model=wider, train_stream=ToyStream(4)).fit()


# ------------------------------------------------------------------------------- dead or exploded runs
def test_a_run_whose_gradient_dies_stops_and_says_so(tmp_path):
    with pytest.raises((TrainingDiverged, CheckpointError)) as err:
        _fit(tmp_path, max_steps=30, optim={"name": "adamw", "lr": 1e6}, checkpoint={"every": 1})
    message = str(err.value)
    assert "gradient was exactly 0" in message or "has exploded" in message, message
    assert "last good checkpoint" not in message or "step-00000" in message
    last = ckpt.resolve_link(tmp_path / "run" / "checkpoints", "last")
    if last is not None:  # whatever was kept holds sane weights
        assert ckpt.weight_problem(_weights(last)) is None
