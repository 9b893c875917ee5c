"""Batches of prepared features (a task head's examples in memory), endlessly, each epoch in a seeded
order, with a position that a checkpoint saves so that training resumes on the same batch.

Epoch e's order is the order of epoch e-1 shuffled once more by one `random.Random(seed)`, so the
order of any epoch is recomputed from the seed on resume. Under DDP every process builds the same
global batch and takes its own contiguous rows; an epoch's last batch is dropped there when it has
fewer rows than processes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from t2t.errors import ConfigError

Batch = dict[str, torch.Tensor]


class FeatureStream:
    def __init__(
        self,
        features: Sequence[dict],
        batch_size: int,
        collate: Callable[[Sequence[dict]], Batch],
        seed: int,
        *,
        examples_per_epoch: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not features:
            raise ConfigError("no training examples; check data.train and data.limit_train")
        self.features, self.batch_size, self.collate, self.seed = features, batch_size, collate, seed
        self.examples_per_epoch = examples_per_epoch or len(features)  # what `epochs` counts
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0  # the next batch: epoch, first row of its order
        self._order: list[int] | None = None

    def _epoch_order(self) -> list[int]:
        if self._order is None:
            rng, order = random.Random(self.seed), list(range(len(self.features)))
            for _ in range(self.epoch + 1):
                rng.shuffle(order)
            self._rng, self._order = rng, order
        return self._order

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        while True:
            order = self._epoch_order()
            if self.start >= len(order):
                self.epoch, self.start = self.epoch + 1, 0
                self._rng.shuffle(order)  # the next epoch's order, as _epoch_order would recompute it
                continue
            rows = order[self.start : self.start + self.batch_size]
            self.start += self.batch_size
            if len(rows) < self.world_size:
                continue
            per, extra = divmod(len(rows), self.world_size)
            first = self.rank * per + min(self.rank, extra)
            mine = rows[first : first + per + (self.rank < extra)]
            return self.collate([self.features[i] for i in mine])

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.start, self._order = int(state["epoch"]), int(state["start"]), None
