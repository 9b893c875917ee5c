"""Exact resume: a real training process killed with SIGKILL at a random step and resumed ends with
weights bit-identical to an uninterrupted run (dropout, AdamW state, sampled scheduled sampling and the
data position all have to come back exactly)."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from t2t.train import read_metrics
from test_train_support import run_training_process

TESTS = Path(__file__).parent
STEPS = 14
SCRIPT = f"""
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {str(TESTS)!r})
from pathlib import Path
from test_train_support import ToyStream, config, tiny_model
from t2t.train import Trainer
cfg = config(
    Path(sys.argv[1]), max_steps={STEPS}, resume=True, grad_accum_steps=2,
    checkpoint={{"every": 1, "keep_last": 2}},
    scheduled_sampling={{"schedule": "constant", "max_prob": 0.3, "sample": True}},
)
Trainer(cfg, model=tiny_model(dropout=0.1), train_stream=ToyStream(4)).fit()
"""


def _run(directory: Path, kill_at: int | None = None) -> int:
    argv = [sys.executable, "-c", SCRIPT, str(directory)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    reached = run_training_process(argv, directory / "run", kill_at, env=env)
    return STEPS if kill_at is None else reached


def _final_weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "run" / "checkpoints" / f"step-{STEPS:06d}" / "model.safetensors"))


@pytest.mark.slow
def test_sigkill_and_resume_is_bit_identical(tmp_path):
    reference = tmp_path / "reference"
    _run(reference)
    killed = tmp_path / "killed"
    kill_at = random.Random().randint(2, STEPS - 3)
    reached = _run(killed, kill_at=kill_at)
    assert reached < STEPS
    _run(killed)  # same command: resume=True continues from checkpoints/last
    ours, theirs = _final_weights(killed), _final_weights(reference)
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), f"{key} differs after a kill at step {reached}"
    # the log of the resumed run has each step once, with the reference run's losses
    ref = {r["step"]: r["loss"] for r in read_metrics(reference / "run") if r["kind"] == "train"}
    got = [r for r in read_metrics(killed / "run") if r["kind"] == "train"]
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    assert all(r["loss"] == ref[r["step"]] for r in got)


def test_resume_restores_position_optimizer_and_counters(tmp_path):
    from t2t.train import Trainer
    from test_train_support import ToyStream, config, tiny_model

    cfg = config(tmp_path, max_steps=3, checkpoint={"every": 1})
    Trainer(cfg, model=tiny_model(), train_stream=ToyStream()).fit()
    stream = ToyStream()
    trainer = Trainer(cfg.replace(max_steps=5, resume=True), model=tiny_model(seed=9), train_stream=stream)
    result = trainer.fit()
    assert result.step == 5 and len(result.losses) == 2
    assert stream.position == 5
    assert trainer.optimizer.state_dict()["state"][0]["step"] == 5


def test_resume_from_a_dangling_last_link_is_refused(tmp_path):
    """A `last` link whose checkpoint is gone must not silently restart from step 0."""
    import shutil

    import pytest

    from t2t.errors import CheckpointError
    from t2t.train import Trainer
    from test_train_support import ToyStream, config, tiny_model

    cfg = config(tmp_path, max_steps=2, checkpoint={"every": 1, "keep_last": 2})
    Trainer(cfg, model=tiny_model(), train_stream=ToyStream()).fit()
    root = next(tmp_path.rglob("checkpoints"))
    shutil.rmtree((root / "last").resolve())
    with pytest.raises(CheckpointError, match=r"last points at .*missing; point it at step-0+1"):
        Trainer(cfg.replace(max_steps=4, resume=True), model=tiny_model(), train_stream=ToyStream()).fit()
