"""Incremental learning: interleave batches of the new task with replayed batches of earlier tasks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any


class ReplayStream:
    """Each batch comes from `replay` with probability `share`, else from `main`. The choice uses its own
    seeded generator, and its state is part of `state_dict()`, so a resumed run draws the same batches."""

    def __init__(self, main: Any, replay: Any, share: float, seed: int = 0) -> None:
        self.main, self.replay, self.share = main, replay, share
        self._rng = random.Random(seed)
        self._main_it: Iterator | None = None
        self._replay_it: Iterator | None = None
        self.replayed = 0
        self.batches = 0

    def __iter__(self) -> ReplayStream:
        return self

    def __next__(self) -> dict:
        use_replay = self._rng.random() < self.share
        if use_replay:
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
            "rng": self._rng.getstate(),
            "replayed": self.replayed,
            "batches": self.batches,
        }

    def load_state_dict(self, state: dict) -> None:
        self.main.load_state_dict(state["main"])
        self.replay.load_state_dict(state["replay"])
        self._rng.setstate(state["rng"])
        self.replayed, self.batches = state["replayed"], state["batches"]
        self._main_it = self._replay_it = None

    @property
    def stats(self) -> dict:
        return {"batches": self.batches, "replayed": self.replayed}
