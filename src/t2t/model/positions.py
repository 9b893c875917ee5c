"""Position schemes: T5 relative bias, rotary (RoPE), learned and sinusoidal absolute embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn

from t2t.config import ModelConfig


def relative_position_bucket(
    relative_position: torch.Tensor, *, bidirectional: bool, num_buckets: int, max_distance: int
) -> torch.Tensor:
    """Map key_pos - query_pos to T5's buckets: exact for small distances, log-spaced up to max_distance.

    Bidirectional (encoder) buckets spend half the buckets on keys after the query; unidirectional
    (decoder) buckets treat every key after the query as distance 0, since the causal mask hides them.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # Distances >= max_exact: log-spaced buckets (float log as in Mesh TensorFlow, then truncated).
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class RelativePositionBias(nn.Module):
    """One bias table per stack, shared by all its layers: bias[head, bucket(key_pos - query_pos)]."""

    def __init__(self, config: ModelConfig, *, bidirectional: bool) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        self.num_buckets = config.relative_buckets
        self.max_distance = config.relative_max_distance
        self.table = nn.Embedding(config.relative_buckets, config.n_heads)

    def forward(self, query_pos: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
        """query_pos [B|1, Tq], key_pos [B|1, Tk] -> additive bias [B|1, heads, Tq, Tk]."""
        relative = key_pos[:, None, :] - query_pos[:, :, None]
        bucket = relative_position_bucket(
            relative,
            bidirectional=self.bidirectional,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )
        return self.table(bucket).permute(0, 3, 1, 2)


class Rotary(nn.Module):
    """Rotary embeddings in the rotate-half layout that HF's Llama uses (q/k weights permuted to match)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        dim = config.dim_head
        inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [B|1, T] -> (cos, sin), each [B|1, 1, T, head_dim], in fp32."""
        freqs = positions[:, :, None].float() * self.inv_freq.float()[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[:, None], emb.sin()[:, None]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, heads, T, head_dim] by the angles in cos/sin."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


def sinusoidal_table(n_positions: int, dim: int) -> torch.Tensor:
    """Vaswani et al.'s fixed table: sin on even channels, cos on odd ones."""
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_positions, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table


class AbsolutePositions(nn.Module):
    """Learned (BERT, GPT-2) or sinusoidal absolute position embeddings, added to the token embeddings."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.max_positions = config.max_positions
        if config.position == "learned":
            self.table = nn.Embedding(config.max_positions, config.d_model)
        else:
            self.register_buffer(
                "sinusoid", sinusoidal_table(config.max_positions, config.d_model), persistent=False
            )

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "table"):
            return self.table(positions)
        return self.sinusoid[positions]
