"""Stand-ins for the training tests: a deterministic batch stream with a saved position, and helpers.

ToyStream implements the BatchStream protocol of t2t.data (iterate batches, state_dict /
load_state_dict: IndexedStream's, whose position is the whole state; rank / world_size rows of each
global batch) on a learnable toy task: the target is
the input reversed, so the loss falls within a few dozen steps of a tiny model.
"""

from __future__ import annotations

from typing import Any

import torch

import t2t
from t2t.experiments.indexed_stream import IndexedStream
from t2t.train import TrainConfig

IGNORE = -100


class ToyStream(IndexedStream):
    def __init__(
        self,
        batch_size: int = 8,
        *,
        arch: str = "encoder-decoder",
        vocab: int = 128,
        min_len: int = 3,
        max_len: int = 10,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        limit: int | None = None,
    ) -> None:
        self.batch_size, self.arch, self.vocab = batch_size, arch, vocab
        self.min_len, self.max_len, self.seed = min_len, max_len, seed
        self.rank, self.world_size, self.limit = rank, world_size, limit
        self.position = 0

    def global_rows(self, index: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        rows = []
        for _ in range(self.batch_size):
            n = int(torch.randint(self.min_len, self.max_len + 1, (1,), generator=g))
            rows.append(torch.randint(3, self.vocab, (n,), generator=g).tolist())
        return rows

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        rows = self.global_rows(index)
        per = self.batch_size // self.world_size
        return make_batch(rows[self.rank * per : (self.rank + 1) * per], self.arch)

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.limit is not None and self.position >= self.limit:
            raise StopIteration
        return super().__next__()


def make_batch(rows: list[list[int]], arch: str) -> dict[str, torch.Tensor]:
    """Encoder-decoder: inputs -> reversed inputs + EOS; decoder: inputs, reversed (one sequence)."""
    if arch == "decoder":
        seqs = [[*r, 2, *r[::-1], 1] for r in rows]
        width = max(map(len, seqs))
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, IGNORE)}
    width = max(map(len, rows)) + 1
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    for i, r in enumerate(rows):
        ids[i, : len(r) + 1] = torch.tensor([*r, 1])
        mask[i, : len(r) + 1] = 1
        labels[i, : len(r) + 1] = torch.tensor([*r[::-1], 1])
    dec = torch.zeros_like(labels)
    dec[:, 1:] = labels[:, :-1].clamp(min=0)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "decoder_input_ids": dec,
        "decoder_attention_mask": (labels != IGNORE).long().roll(1, 1).clamp(min=0)
        | (labels != IGNORE).long(),
    }


def tiny_model(preset: str = "t5-tiny", dropout: float = 0.0, seed: int = 0) -> t2t.T2TModel:
    torch.manual_seed(seed)
    return t2t.build_model(t2t.preset(preset).replace(dropout=dropout))


def config(tmp_path: Any, **fields: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "run_dir": str(tmp_path / "run"),
        "max_steps": 5,
        "progress": False,
        "log_every": 1,
        "optim": {"name": "adamw", "lr": 1e-2},
    }
    return _merged(base, fields)


# ------------------------------------------------------------------------------ real data for the loop
WORDS = ["cat", "dog", "bird", "fish", "sat", "ran", "flew", "swam", "on", "under", "the", "a", "mat", "tree"]
NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
GERMAN = ["eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn"]


def write_text_data(root: Any) -> Any:
    """Files for real streams in `root`: a corpus of blank-line separated documents, a translation task
    (numbers -> German, with a validation split), a colour classification task and tasks.yaml naming
    them (`docs`, `numbers`, `colours`). Returns the tasks.yaml path."""
    import json
    import random

    import yaml

    rng = random.Random(0)
    docs = []
    for _ in range(40):
        sentences = [
            f"the {rng.choice(WORDS[:4])} {rng.choice(WORDS[4:8])} {rng.choice(WORDS[8:10])} the "
            f"{rng.choice(WORDS[12:])} ."
            for _ in range(rng.randint(2, 4))
        ]
        docs.append("\n".join(sentences))
    (root / "docs.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    for split, n in (("train", 60), ("validation", 6)):
        with open(root / f"numbers-{split}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps({"inputs": NUMBERS[i % 10], "targets": GERMAN[i % 10]}) + "\n")
        with open(root / f"colours-{split}.jsonl", "w", encoding="utf-8") as fh:
            for i in range(n):
                colour = ["red", "blue"][i % 2]
                fh.write(json.dumps({"inputs": f"the {colour} {WORDS[i % 4]}", "targets": colour}) + "\n")
    tasks = {
        "tasks": [
            {"name": "docs", "source": {"train": "docs.txt"}, "format": "documents"},
            {
                "name": "numbers",
                "template": "translation",
                "source": {"train": "numbers-train.jsonl", "validation": "numbers-validation.jsonl"},
            },
            {
                "name": "colours",
                "prefix": "colour: ",
                "metrics": ["accuracy"],
                "source": {"train": "colours-train.jsonl", "validation": "colours-validation.jsonl"},
            },
        ]
    }
    path = root / "tasks.yaml"
    path.write_text(yaml.safe_dump(tasks), encoding="utf-8")
    return path


def train_tokenizer(root: Any, kind: str = "sentencepiece", vocab_size: int = 200) -> Any:
    """A tokenizer of `kind` trained on every file write_text_data wrote; returns its directory."""
    from t2t.cli.main import main

    inputs = [str(root / "docs.txt"), str(root / "numbers-train.jsonl"), str(root / "colours-train.jsonl")]
    out = root / f"tok-{kind}"
    args = ["tokenizer", "train", "--input", *inputs, "--vocab-size", str(vocab_size), "--out", str(out)]
    assert main([*args, "--kind", kind]) == 0
    return out


def text_config(root: Any, tokenizer: Any, **fields: Any) -> TrainConfig:
    """A TrainConfig over write_text_data's tasks with a tiny model from a preset (t5-tiny by default)."""
    base: dict[str, Any] = {
        "run_dir": str(root / "run"),
        "max_steps": 4,
        "progress": False,
        "tensorboard": False,
        "log_every": 1,
        "model": {"preset": "t5-tiny", "tokenizer": str(tokenizer), "overrides": {"dropout": 0.0}},
        "data": {
            "tasks_yaml": [str(root / "tasks.yaml")],
            "task": "numbers",
            "batch_size": 4,
            "max_input_length": 40,
            "max_target_length": 12,
        },
        "optim": {"name": "adamw", "lr": 1e-2},
    }
    return _merged(base, fields)


def _merged(base: dict[str, Any], fields: dict[str, Any]) -> TrainConfig:
    """`base` with `fields` laid over it (a section's keys merged one level deep)."""
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return TrainConfig.from_dict(base)


def run_training_process(argv: list[str], run_dir: Any, kill_at: int | None = None, **popen: Any) -> int:
    """Run a training process to its end (it must exit 0; returns -1), or SIGKILL it as soon as
    run_dir's metrics.jsonl records a train step >= kill_at, returning the last step recorded (the
    kill-and-resume tests)."""
    import signal
    import subprocess
    import time

    from t2t.train import read_metrics

    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, **popen)
    if kill_at is None:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-3000:]
        return -1
    deadline = time.monotonic() + 600
    steps: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None:
        steps = [r["step"] for r in read_metrics(run_dir) if r["kind"] == "train"]
        if steps and steps[-1] >= kill_at:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return steps[-1]
