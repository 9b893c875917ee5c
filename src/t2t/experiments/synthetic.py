"""Synthetic sequence tasks over integer tokens, for the architecture experiments: effects show within a
few hundred steps of a tiny model, and every evaluation sequence is new (drawn, not memorised).

Tokens: 0 padding, 1 end of sequence, 2 separator (decoder-only layout); symbols 3 .. vocab-1.

    copy     the input as it is
    reverse  the input reversed
    sort     the input's symbols in ascending order

An encoder-decoder reads `x EOS` and is trained on `y EOS`; a decoder-only model reads `x SEP y EOS`
with the loss on `y EOS` only. `SyntheticStream` is a batch stream with `state_dict()` /
`load_state_dict()` (batch i depends only on (seed, i)), as the Trainer's streams are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t2t.errors import ConfigError
from t2t.experiments.indexed_stream import IndexedStream

PAD, EOS, SEP = 0, 1, 2
FIRST_SYMBOL = 3
IGNORE = -100
TASKS = ("copy", "reverse", "sort")


def target_of(task: str, row: list[int]) -> list[int]:
    """The answer to one input row (symbols only, no EOS)."""
    if task == "copy":
        return list(row)
    if task == "reverse":
        return row[::-1]
    if task == "sort":
        return sorted(row)
    raise ConfigError(f"synthetic task {task!r} is not one of {', '.join(TASKS)}")


@dataclass(frozen=True)
class SyntheticTask:
    task: str = "reverse"
    vocab: int = 32  # model vocabulary: 3 reserved ids and vocab - 3 symbols
    min_length: int = 4
    max_length: int = 12

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"data.task={self.task!r} is not one of {', '.join(TASKS)}")
        if self.vocab < FIRST_SYMBOL + 2:
            raise ConfigError(f"data.vocab={self.vocab} leaves fewer than 2 symbols; give at least 5")
        if not 1 <= self.min_length <= self.max_length:
            raise ConfigError(
                f"data.min_length={self.min_length}, max_length={self.max_length}: need 1 <= min <= max"
            )

    def rows(self, count: int, generator: torch.Generator) -> list[list[int]]:
        out = []
        for _ in range(count):
            n = int(torch.randint(self.min_length, self.max_length + 1, (1,), generator=generator))
            out.append(torch.randint(FIRST_SYMBOL, self.vocab, (n,), generator=generator).tolist())
        return out

    def examples(self, count: int, seed: int) -> list[tuple[list[int], list[int]]]:
        """(input symbols, target symbols) pairs, without EOS: held-out evaluation sets (another seed
        space than training batches, see SyntheticStream)."""
        g = torch.Generator().manual_seed(10_000_019 + seed)
        return [(row, target_of(self.task, row)) for row in self.rows(count, g)]


def encode_pair(x: list[int], y: list[int], arch: str) -> tuple[list[int], list[int]]:
    """(ids, labels) of a decoder-only row: `x SEP y EOS`, labels only on `y EOS`."""
    if arch != "decoder":
        raise ConfigError(f"encode_pair is for decoder-only rows, not arch={arch!r}")
    ids = [*x, SEP, *y, EOS]
    labels = [IGNORE] * (len(x) + 1) + [*y, EOS]
    return ids, labels


def make_batch(pairs: list[tuple[list[int], list[int]]], arch: str) -> dict[str, torch.Tensor]:
    """The batch a model of `arch` trains on (the keys of its forward pass)."""
    if arch == "decoder":
        rows = [encode_pair(x, y, arch) for x, y in pairs]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.full((len(rows), width), PAD, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, (r, lab) in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            labels[i, : len(lab)] = torch.tensor(lab)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if arch != "encoder-decoder":
        raise ConfigError(f"synthetic tasks train encoder-decoder or decoder models, not arch={arch!r}")
    width_in = max(len(x) for x, _ in pairs) + 1
    width_out = max(len(y) for _, y in pairs) + 1
    ids = torch.full((len(pairs), width_in), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full((len(pairs), width_out), IGNORE, dtype=torch.long)
    decoder_ids = torch.full((len(pairs), width_out), PAD, dtype=torch.long)
    decoder_mask = torch.zeros_like(decoder_ids)
    for i, (x, y) in enumerate(pairs):
        ids[i, : len(x) + 1] = torch.tensor([*x, EOS])
        mask[i, : len(x) + 1] = 1
        labels[i, : len(y) + 1] = torch.tensor([*y, EOS])
        decoder_ids[i, : len(y) + 1] = torch.tensor([PAD, *y])  # shifted right behind the start (pad) id
        decoder_mask[i, : len(y) + 1] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "decoder_input_ids": decoder_ids,
        "decoder_attention_mask": decoder_mask,
    }


class SyntheticStream(IndexedStream):
    """Endless batches of a SyntheticTask; batch i is a function of (seed, i) alone."""

    def __init__(self, task: SyntheticTask, batch_size: int, arch: str, seed: int = 0) -> None:
        self.task, self.batch_size, self.arch, self.seed = task, batch_size, arch, seed
        self.position = 0

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        rows = self.task.rows(self.batch_size, g)
        return make_batch([(r, target_of(self.task.task, r)) for r in rows], self.arch)
