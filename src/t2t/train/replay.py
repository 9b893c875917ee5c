"""Incremental learning: interleave batches of the new task with replayed batches of earlier tasks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from t2t.data.stream import StreamStats


class ReplayStream:
    """Batch n comes from `replay` when floor((n + 1) * share) > floor(n * share), else from `main`: exactly
    `share` of the batches are replayed, spread evenly, with no randomness to save. The position of both
    streams is part of `state_dict()`, so a resumed run reads the same batches."""

    def __init__(self, main: Any, replay: Any, share: float) -> None:
        self.main, self.replay, self.share = main, replay, share
        self._main_it: Iterator | None = None
        self._replay_it: Iterator | None = None
        self.replayed = 0
        self.batches = 0

    def __iter__(self) -> ReplayStream:
        return self

    def _replay_next(self) -> bool:
        n = self.batches
        return math.floor((n + 1) * self.share + 1e-9) > math.floor(n * self.share + 1e-9)

    def __next__(self) -> dict:
        if self._replay_next():
            if self._replay_it is None:
                self._replay_it = iter(self.replay)
            batch = next(self._replay_it)
            self.replayed += 1
        else:
            if self._main_it is None:
                self._main_it = iter(self.main)
            batch = next(self._main_it)
        self.batches += 1
        return batch

    def state_dict(self) -> dict:
        return {
            "main": self.main.state_dict(),
            "replay": self.replay.state_dict(),
            "replayed": self.replayed,
            "batches": self.batches,
        }

    def load_state_dict(self, state: dict) -> None:
        self.main.load_state_dict(state["main"])
        self.replay.load_state_dict(state["replay"])
        self.replayed, self.batches = state["replayed"], state["batches"]
        self._main_it = self._replay_it = None

    @property
    def stats(self) -> StreamStats:
        """Both streams' counters summed (examples, truncations, ...), with batches and replayed."""
        merged = StreamStats()
        for stream in (self.main, self.replay):
            for key, value in getattr(stream, "stats", {}).items():
                if isinstance(value, int):
                    merged[key] = merged.get(key, 0) + value
        merged.update(batches=self.batches, replayed=self.replayed)
        return merged
