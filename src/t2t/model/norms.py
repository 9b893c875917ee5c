"""LayerNorm and RMSNorm. RMSNorm takes its variance in fp32, as T5 and Llama do, so bf16 runs match."""

from __future__ import annotations

import torch
from torch import nn

from t2t.config import ModelConfig


class RMSNorm(nn.Module):
    """Scale-only norm without mean subtraction or bias (T5's LayerNorm, Llama's RMSNorm)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def make_norm(config: ModelConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.d_model, config.norm_eps)
    return nn.LayerNorm(config.d_model, eps=config.norm_eps, bias=config.bias)
