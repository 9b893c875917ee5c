"""Helpers shared by the tests (import as `from helpers import ...`)."""

from __future__ import annotations

import torch


def padded_batch(
    vocab: int, batch: int = 3, length: int = 9, low: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids with right padding of different lengths per row (row 0 is full)."""
    ids = torch.randint(low, vocab, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, max(1, length - 3 * row) :] = 0
    return ids, mask
