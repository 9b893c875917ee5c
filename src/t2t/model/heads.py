"""Output heads on top of a stack: BERT's pooler, masked-LM and next-sentence heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2t.config import ModelConfig
from t2t.model.activations import activation


class Pooler(nn.Module):
    """BERT's pooled output: tanh(W h[CLS] + b), the input of sentence-level heads."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class MaskedLMHead(nn.Module):
    """BERT's MLM head: dense + activation + LayerNorm, then the (tied) vocabulary projection plus a bias."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)
        self.act = activation(config.activation)
        self.norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, vocab_weight: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(self.act(self.dense(hidden))), vocab_weight, self.bias)
