"""Position-wise feed-forward: plain (ReLU / GELU / SiLU) or gated (gated-GELU as T5 v1.1, SwiGLU as Llama).

The gated variants keep both input projections in one matrix (`up` holds [gate; value]) so that one
matmul serves both; interop splits it back into HF's wi_0 / wi_1 or gate_proj / up_proj.
"""

from __future__ import annotations

import torch
from torch import nn

from t2t.config import ModelConfig
from t2t.model.activations import activation
from t2t.model.dropout import Dropout


class FeedForward(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gated = config.gated_ffn
        self.d_ff = config.d_ff
        self.up = nn.Linear(config.d_model, config.d_ff * (2 if self.gated else 1), bias=config.bias)
        self.down = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.act = activation(config.activation)
        # ReLU may overwrite the up projection's output: nothing else reads it, and ReLU's backward needs
        # only its own result. That saves a fresh d_ff-wide buffer per layer (its page faults included).
        self.relu_in_place = config.activation == "relu" and not self.gated
        self.dropout = Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        if self.gated:
            gate, value = h.split(self.d_ff, dim=-1)
            h = self.act(gate) * value
        elif self.relu_in_place:
            h = torch.relu_(h)
        else:
            h = self.act(h)
        return self.down(self.dropout(h))
