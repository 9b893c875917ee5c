"""A batch stream whose batch i is a function of i alone: its position is the whole of its state."""

from __future__ import annotations

from typing import Any

import torch


class IndexedStream:
    """Iterates `batch(0), batch(1), ...`; `state_dict()` is the position, so a resumed run continues
    exactly (the Trainer's BatchStream protocol). Subclasses define `batch(index)`."""

    position: int = 0

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __iter__(self) -> IndexedStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        out = self.batch(self.position)
        self.position += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])
