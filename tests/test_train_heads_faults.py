"""A task-head recipe gets what text-to-text training has, through the same Trainer: a run killed with
SIGKILL and resumed ends bit-identical to an uninterrupted one, and DDP over 2 gloo processes gives the
loss curve of one process with the same global batch."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from t2t.train import read_metrics
from test_train_support import run_training_process

STEPS = 12
RECIPE = [
    "finetune",
    "--recipe",
    "bert-sentiment",
    "model.tokenizer_vocab_size=400",
    "model.overrides={d_model: 32, d_ff: 64, n_heads: 2, n_encoder_layers: 2, dropout: 0.1}",
    "data.max_input_length=32",
    "data.batch_size=8",
    "data.limit_train=64",
    "data.limit_eval=16",
    "progress=false",
    "tensorboard=false",
    "log_every=1",
]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _command(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "t2t.cli.main", *RECIPE, f"run_dir={run_dir}", *extra]


def _train_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in read_metrics(run_dir) if r["kind"] == "train"]


def _run(run_dir: Path, kill_at: int | None = None) -> None:
    extra = (f"max_steps={STEPS}", "checkpoint.every=1", "checkpoint.keep_last=2", "--resume")
    run_training_process(_command(run_dir, *extra), run_dir, kill_at, env=_env(), stdout=subprocess.PIPE)


@pytest.mark.slow
def test_a_killed_head_recipe_resumes_bit_identically(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _run(reference)
    kill_at = random.Random().randint(2, STEPS - 3)
    _run(killed, kill_at=kill_at)
    assert _train_steps(killed)[-1] < STEPS
    _run(killed)  # the same command continues from checkpoints/last
    name = f"step-{STEPS:06d}"
    ours = load_file(str(killed / "checkpoints" / name / "model.safetensors"))
    theirs = load_file(str(reference / "checkpoints" / name / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), f"{key} differs after a kill at step {kill_at}"
    losses = {r["step"]: r["loss"] for r in read_metrics(reference) if r["kind"] == "train"}
    got = [r for r in read_metrics(killed) if r["kind"] == "train"]
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))
    assert all(r["loss"] == losses[r["step"]] for r in got)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_losses(run_dir: Path, nproc: int) -> list[float]:
    args = [*RECIPE, f"run_dir={run_dir}", "max_steps=6", "grad_accum_steps=2"]
    args[4] = "model.overrides={d_model: 32, d_ff: 64, n_heads: 2, n_encoder_layers: 2, dropout: 0.0}"
    if nproc == 1:
        cmd = [sys.executable, "-m", "t2t.cli.main", *args]
    else:
        launcher = ["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1"]
        cmd = [sys.executable, *launcher, f"--master_port={_free_port()}", "-m", "t2t.cli.main", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [r["loss"] for r in read_metrics(run_dir) if r["kind"] == "train"]


@pytest.mark.slow
def test_a_head_recipe_under_ddp_matches_one_process(tmp_path):
    single = _ddp_losses(tmp_path / "single", 1)
    double = _ddp_losses(tmp_path / "ddp", 2)
    assert len(single) == len(double) == 6
    assert max(abs(a - b) for a, b in zip(single, double)) < 1e-5, (single, double)
