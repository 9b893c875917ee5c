"""PEFT in the Trainer: the base stays bit-identical, checkpoints carry the adapter in PEFT's layout
beside the base weights (transformers + peft and t2t load them to the same logits), exact resume, task
heads, bf16, DDP / FSDP, and `t2t peft merge`."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
from pathlib import Path

import peft
import pytest
import torch
import transformers

import t2t
from t2t.cli.main import main
from t2t.peft.files import PEFT_CONFIG, PEFT_WEIGHTS, T2T_ADAPTER_CONFIG, T2T_ADAPTER_WEIGHTS
from t2t.peft.lora import LoRALinear
from t2t.train import Trainer, read_metrics
from test_train_support import ToyStream, config, tiny_model

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
LORA = {"method": "lora", "r": 4, "alpha": 8, "dropout": 0.1, "target": ["q", "v"]}


def _base_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if ".lora_" not in k and ".adapter_" not in k}


def _batch() -> dict[str, torch.Tensor]:
    return ToyStream(4, seed=9).batch(0)


def test_a_lora_run_trains_the_adapter_only_and_checkpoints_it_for_peft(tmp_path, caplog):
    torch.manual_seed(1)
    base = tiny_model(dropout=0.1, seed=1)
    base.save_pretrained(tmp_path / "base")  # what a user starts from (HF format: T5ForConditionalGeneration)
    model = t2t.from_pretrained(tmp_path / "base").train()
    before = _base_state(model)
    cfg = config(tmp_path, max_steps=6, peft=LORA, checkpoint={"every": 3}, progress=True)
    trainer = Trainer(cfg, model=model, train_stream=ToyStream(8))
    with caplog.at_level(logging.INFO, logger="t2t"):
        result = trainer.fit()
    assert result.losses[-1] < result.losses[0]
    assert re.search(r"[\d,]+ parameters, [\d,]+ trainable \(\d", caplog.text)  # the run says what trains
    after = _base_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the frozen base, bit for bit
    lora_b = [p for n, p in model.named_parameters() if ".lora_B." in n]
    assert lora_b and all(float(b.detach().abs().max()) > 0 for b in lora_b)

    ckpt = result.last_checkpoint
    files = {p.name for p in ckpt.iterdir()}
    assert {PEFT_CONFIG, PEFT_WEIGHTS, T2T_ADAPTER_CONFIG, T2T_ADAPTER_WEIGHTS, "config.json"} <= files
    batch = _batch()
    model.eval()
    with torch.no_grad():
        ours = model(**batch).logits
        # transformers + peft on the base the run started from, with the checkpoint's adapter
        hf = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "base").eval()
        oracle = peft.PeftModel.from_pretrained(hf, ckpt).eval()
        theirs = oracle(**{k: v for k, v in batch.items() if k != "labels"}).logits
        # the checkpoint as a model directory: transformers (with peft installed) and t2t apply the
        # adapter embedded beside the base weights
        embedded = transformers.T5ForConditionalGeneration.from_pretrained(ckpt).eval()
        embedded = embedded(**{k: v for k, v in batch.items() if k != "labels"}).logits
        reloaded = t2t.from_pretrained(ckpt)(**batch).logits
    assert float((ours - theirs).abs().max()) < 1e-4
    assert float((ours - embedded).abs().max()) < 1e-4
    assert float((ours - reloaded).abs().max()) < 1e-5
    assert not any(isinstance(m, LoRALinear) for m in t2t.from_pretrained(ckpt).modules())


def test_a_lora_run_resumes_exactly(tmp_path):
    def run(name: str, steps: int, resume: bool = False) -> tuple[Trainer, list[float]]:
        cfg = config(tmp_path / name, max_steps=steps, peft=LORA, checkpoint={"every": 3}, resume=resume)
        trainer = Trainer(cfg, model=tiny_model(dropout=0.1, seed=2), train_stream=ToyStream(8))
        return trainer, trainer.fit().losses

    straight, losses = run("a", 6)
    run("b", 3)
    resumed, rest = run("b", 6, resume=True)
    assert rest == losses[3:]
    ours, theirs = straight.model.state_dict(), resumed.model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    changed = config(tmp_path / "b", max_steps=6, peft={**LORA, "r": 8}, resume=True)
    with pytest.raises(t2t.ConfigError, match=r"peft\.r=8 differs"):
        Trainer(changed, model=tiny_model(seed=2), train_stream=ToyStream(8)).fit()


def test_adapters_with_activation_checkpointing_and_bf16(tmp_path):
    model = tiny_model(preset="gpt2-tiny", seed=3)
    before = _base_state(model)
    cfg = config(
        tmp_path,
        max_steps=3,
        bf16=True,
        activation_checkpointing=True,
        peft={"method": "adapter", "bottleneck": 8},
        checkpoint={"format": "t2t"},
    )
    result = Trainer(cfg, model=model, train_stream=ToyStream(8, arch="decoder")).fit()
    assert all(torch.isfinite(torch.tensor(result.losses)))
    after = _base_state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    files = {p.name for p in result.last_checkpoint.iterdir()}
    assert {T2T_ADAPTER_CONFIG, T2T_ADAPTER_WEIGHTS} <= files and PEFT_CONFIG not in files
    batch = ToyStream(4, arch="decoder", seed=9).batch(0)
    with torch.no_grad():
        expected = model.eval()(**batch).logits
        got = t2t.from_pretrained(result.last_checkpoint)(**batch).logits
    assert torch.equal(expected, got)


class _Labels:
    """Sentence classification batches: label = whether token 5 occurs in the row."""

    def __init__(self) -> None:
        self.position = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.position)
        self.position += 1
        ids = torch.randint(6, 128, (8, 10), generator=g)
        labels = torch.randint(0, 2, (8,), generator=g)
        ids[labels == 1, 3] = 5
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = state["position"]


def test_the_new_bert_head_trains_with_the_adapter(tmp_path):
    torch.manual_seed(4)
    model = t2t.build_model(t2t.preset("bert-tiny").replace(head="classification", num_labels=2, dropout=0.0))
    before = _base_state(model)
    cfg = config(tmp_path, max_steps=4, peft=LORA)
    result = Trainer(cfg, model=model, train_stream=_Labels()).fit()
    after = _base_state(model)
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert moved == {"classifier", "pooler"}  # the head trained; the encoder's weights did not move
    saved = json.loads((result.last_checkpoint / PEFT_CONFIG).read_text())
    assert saved["task_type"] == "SEQ_CLS" and "classifier" in saved["modules_to_save"]


def test_t2t_peft_merge_writes_a_model_that_transformers_loads(tmp_path, capsys):
    base = tiny_model(seed=5)
    base.save_pretrained(tmp_path / "base")
    cfg = config(tmp_path, max_steps=3, peft={**LORA, "target": ["all"]})
    model = t2t.from_pretrained(tmp_path / "base")
    result = Trainer(cfg, model=model, train_stream=ToyStream(8)).fit()
    argv = ["peft", "merge", "--model", str(tmp_path / "base"), "--adapter", str(result.last_checkpoint)]
    assert main([*argv, "--out", str(tmp_path / "merged")]) == 0
    assert "merged vs unmerged logits within" in capsys.readouterr().out
    assert not (tmp_path / "merged" / PEFT_CONFIG).exists()
    batch = _batch()
    with torch.no_grad():
        unmerged = model.eval()(**batch).logits
        merged = t2t.from_pretrained(tmp_path / "merged")(**batch).logits
        hf = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "merged").eval()
        theirs = hf(**{k: v for k, v in batch.items() if k != "labels"}).logits
    assert float((unmerged - merged).abs().max()) < 1e-5
    assert float((unmerged - theirs).abs().max()) < 1e-4
    assert main([*argv[:4], "--adapter", str(tmp_path / "base"), "--out", str(tmp_path / "x")]) == 2
    assert "not an adapter" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ DDP / FSDP
SCRIPT = """
import os, sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_train_support import ToyStream, config, tiny_model
from t2t.train import Trainer
rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
cfg = config(Path(sys.argv[1]), max_steps=4, grad_accum_steps=2, distributed={{"strategy": sys.argv[2]}},
             checkpoint={{"every": 2}}, peft={lora!r}, activation_checkpointing=True)
Trainer(cfg, model=tiny_model(seed=1), train_stream=ToyStream(8, max_len=12, rank=rank, world_size=world)).fit()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(tmp_path: Path, name: str, nproc: int, strategy: str) -> list[float]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), lora={**LORA, "dropout": 0.0}))
    launcher = ["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1"]
    launcher += [f"--master_port={_free_port()}"]
    cmd = [sys.executable, *(launcher if nproc > 1 else []), str(script), str(tmp_path / name), strategy]
    import os

    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = tmp_path / name / "run" / "checkpoints" / "last"
    assert (last / PEFT_WEIGHTS).is_file() and (last / T2T_ADAPTER_WEIGHTS).is_file()
    return [r["loss"] for r in read_metrics(tmp_path / name / "run") if r["kind"] == "train"]


@pytest.mark.slow
def test_lora_under_ddp_and_fsdp_matches_one_process(tmp_path):
    single = _train(tmp_path, "single", 1, "ddp")
    for strategy in ("ddp", "fsdp"):
        double = _train(tmp_path, strategy, 2, strategy)
        assert max(abs(a - b) for a, b in zip(single, double, strict=True)) < 1e-5, (strategy, single, double)
