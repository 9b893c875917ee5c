"""Stand-ins for the training tests: a deterministic batch stream with a saved position, and helpers.

ToyStream implements the BatchStream protocol of t2t.data (iterate batches, state_dict /
load_state_dict, rank / world_size rows of each global batch) on a learnable toy task: the target is
the input reversed, so the loss falls within a few dozen steps of a tiny model.
"""

from __future__ import annotations

from typing import Any

import torch

import t2t
from t2t.train import TrainConfig

IGNORE = -100


class ToyStream:
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

    def __iter__(self) -> ToyStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.limit is not None and self.position >= self.limit:
            raise StopIteration
        out = self.batch(self.position)
        self.position += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = state["position"]


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
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return TrainConfig.from_dict(base)
