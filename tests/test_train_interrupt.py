"""Ctrl-C during `t2t train`: exit status 130, one line on stderr, and a complete last checkpoint."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import t2t
from t2t.tokenizer import load_tokenizer
from t2t.train.checkpoint import load_state, resolve_link
from test_train_support import text_config, train_tokenizer, write_text_data


def _wait_for(predicate, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"t2t train ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no checkpoint appeared in time")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigint_exits_130_with_one_line_and_leaves_a_complete_last_checkpoint(tmp_path):
    write_text_data(tmp_path)
    tok = train_tokenizer(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    text_config(tmp_path, tok, max_steps=100_000, checkpoint={"every": 2, "keep_last": 2}).save(recipe)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2t.cli.main", "train", "--config", str(recipe)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    ckpts = tmp_path / "run" / "checkpoints"
    _wait_for(lambda: len(list(ckpts.glob("step-*"))) >= 2, proc, 180)
    time.sleep(random.Random().uniform(0.0, 0.6))  # anywhere in the step / save cycle
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    last = resolve_link(ckpts, "last")
    # one line, no traceback, saying where to continue from
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert stderr.startswith("t2t train: interrupted at step ")
    assert stderr.rstrip().endswith(f"the last checkpoint is {last} (continue with --resume)"), stderr
    assert last is not None and last.name.startswith("step-")
    step = int(last.name.split("-")[1])
    summary = json.loads((last / "trainer_state.json").read_text())
    state = load_state(last)
    assert summary["step"] == state["step"] == step >= 2
    assert t2t.from_pretrained(last) is not None and load_tokenizer(last).vocab_size > 0
    assert {"optimizer", "scheduler", "rng", "stream"} <= set(state)
    # nothing half-written is left in the checkpoints folder (temporary save or link directories)
    assert sorted(p.name for p in ckpts.iterdir() if p.name.startswith(".")) == []

    # and the run continues from it
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "t2t.cli.main",
            "train",
            "--config",
            str(recipe),
            f"max_steps={step + 2}",
            "--resume",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {last} at step {step}" in resumed.stderr
    assert resolve_link(ckpts, "last").name == f"step-{step + 2:06d}"
