"""DDP under torchrun: 2 CPU processes (gloo) give the loss curve of one process with the same global batch."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from t2t.train import read_metrics

TESTS = Path(__file__).parent
SCRIPT = f"""
import os, sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {str(TESTS)!r})
from pathlib import Path
from test_train_support import ToyStream, config, tiny_model
from t2t.train import Trainer
rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
strategy = sys.argv[2]
cfg = config(Path(sys.argv[1]), max_steps=6, grad_accum_steps=2, distributed={{"strategy": strategy}},
             checkpoint={{"every": 3}}, eval={{"every": 3}})
stream = ToyStream(8, max_len=12, rank=rank, world_size=world)
validation = lambda: ToyStream(8, seed=7, limit=2)  # the whole validation set, on rank 0 (FSDP: on all)
result = Trainer(cfg, model=tiny_model(seed=1), train_stream=stream, eval_stream=validation).fit()
if rank == 0:
    print("LOSSES", result.losses)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path: Path, name: str, nproc: int, strategy: str = "ddp") -> list[float]:
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    directory = tmp_path / name
    if nproc == 1:
        cmd = [sys.executable, str(script), str(directory), strategy]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            str(script),
            str(directory),
            strategy,
        ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_metrics(directory / "run")
    evals = [r["eval_loss"] for r in records if r["kind"] == "eval"]
    assert len(evals) == 2
    return [r["loss"] for r in records if r["kind"] == "train"] + evals


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    single = _run(tmp_path, "single", 1)
    double = _run(tmp_path, "ddp", 2)
    assert len(single) == len(double) == 8  # 6 training losses, 2 validation losses
    assert max(abs(a - b) for a, b in zip(single, double)) < 1e-5, json.dumps([single, double])
    assert single[5] < single[0] and single[7] < single[6]  # and it trains
    # rank 0 wrote the checkpoints, with each rank's RNG state
    from t2t.train.checkpoint import load_state

    state = load_state(tmp_path / "ddp" / "run" / "checkpoints" / "last")
    assert state["step"] == 6 and len(state["rng"]) == 2


@pytest.mark.slow
def test_fsdp_matches_one_process_and_saves_full_weights(tmp_path):
    single = _run(tmp_path, "single", 1)
    sharded = _run(tmp_path, "fsdp", 2, strategy="fsdp")
    assert max(abs(a - b) for a, b in zip(single, sharded)) < 1e-5, json.dumps([single, sharded])
    import t2t

    ours = t2t.from_pretrained(tmp_path / "fsdp" / "run" / "checkpoints" / "last").state_dict()
    ref = t2t.from_pretrained(tmp_path / "single" / "run" / "checkpoints" / "last").state_dict()
    import torch

    for key in ref:
        torch.testing.assert_close(
            ours[key], ref[key], rtol=0, atol=1e-4
        )  # Adam at lr 1e-2 amplifies fp noise


RECIPE_SCRIPT = """
import json, os, sys, torch
torch.set_num_threads(1)
from t2t.train import TrainConfig, Trainer
cfg = TrainConfig.load(sys.argv[1])
trainer = Trainer(cfg)  # what `t2t train --config` runs: the stream from make_stream(rank=, world_size=)
stream, rows = trainer.stream, []

class Recording:  # this rank's rows of each batch, padding dropped
    def __iter__(self):
        for batch in stream:
            ids, mask = batch["input_ids"].tolist(), batch["attention_mask"].tolist()
            rows.append([[t for t, m in zip(r, k) if m] for r, k in zip(ids, mask)])
            yield batch
    state_dict, load_state_dict = stream.state_dict, stream.load_state_dict

trainer.stream = Recording()
trainer.fit()
rank = int(os.environ.get("RANK", 0))
with open(os.path.join(cfg.run_dir, f"rows-{rank}.json"), "w") as fh:
    json.dump(rows, fh)
"""


@pytest.mark.slow
def test_a_recipe_under_torchrun_shards_make_stream_like_one_process(tmp_path):
    """A recipe under torchrun: make_stream gives each rank its own rows of each global batch (together
    exactly the batch of one process), and losses and validation losses match one process within 1e-5."""
    from test_train_support import text_config, train_tokenizer, write_text_data

    write_text_data(tmp_path)
    tok = train_tokenizer(tmp_path)
    script = tmp_path / "recipe_script.py"
    script.write_text(RECIPE_SCRIPT)
    curves = {}
    for name, nproc in (("single", 1), ("ddp", 2)):
        cfg = text_config(
            tmp_path,
            tok,
            run_dir=str(tmp_path / name),
            max_steps=4,
            grad_accum_steps=2,
            data={"shuffle": True},
            eval={"every": 2, "loss": True},
        )
        cfg.save(tmp_path / f"{name}.yaml")
        launcher = [f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1", f"--master_port={_free_port()}"]
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *launcher,
            str(script),
            str(tmp_path / f"{name}.yaml"),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=_env())
        assert proc.returncode == 0, proc.stderr[-3000:]
        records = read_metrics(tmp_path / name)
        curves[name] = [r["loss"] for r in records if r["kind"] == "train"] + [
            r["eval_loss"] for r in records if r["kind"] == "eval"
        ]
    single = json.loads((tmp_path / "single" / "rows-0.json").read_text())
    shards = [json.loads((tmp_path / "ddp" / f"rows-{r}.json").read_text()) for r in (0, 1)]
    assert len(single) == len(shards[0]) == len(shards[1]) == 8  # 4 steps x 2 micro-batches
    for whole, first, second in zip(single, *shards):
        assert len(first) == len(second) == 2 and first + second == whole
    assert len(curves["single"]) == len(curves["ddp"]) == 6  # 4 training losses, 2 validation losses
    assert max(abs(a - b) for a, b in zip(curves["single"], curves["ddp"])) < 1e-5, json.dumps(curves)
    assert curves["single"][3] < curves["single"][0]
