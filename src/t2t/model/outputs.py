"""What a forward pass returns: HF-style attribute names (`.logits`, `.loss`), one class for every family."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t2t.model.cache import KVCache


@dataclass
class ModelOutput:
    logits: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    encoder_last_hidden_state: torch.Tensor | None = None
    pooled_output: torch.Tensor | None = None
    nsp_logits: torch.Tensor | None = None  # BERT's next-sentence prediction (0: is next, 1: random)
    start_logits: torch.Tensor | None = None  # span QA: answer start / end scores per token
    end_logits: torch.Tensor | None = None
    cache: KVCache | None = None
