"""Multi-head, grouped-query and multi-query attention, for self, causal and cross attention.

Self-attention projects queries, keys and values with one fused matrix (`qkv`); cross-attention
projects queries from the decoder (`q`) and keys/values from the encoder output (`kv`). Scores go
through PyTorch's scaled_dot_product_attention, with an additive mask that already holds the padding
mask, the causal mask and any relative position bias (built once per stack, not once per layer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t2t.config import ModelConfig
from t2t.model.cache import LayerCache
from t2t.model.dropout import dropout
from t2t.model.positions import apply_rotary


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, *, cross: bool = False) -> None:
        super().__init__()
        self.cross = cross
        self.n_heads = config.n_heads
        self.kv_heads = config.kv_heads
        self.head_dim = config.dim_head
        q_dim = self.n_heads * self.head_dim
        kv_dim = self.kv_heads * self.head_dim
        if cross:
            self.q = nn.Linear(config.d_model, q_dim, bias=config.bias)
            self.kv = nn.Linear(config.d_model, 2 * kv_dim, bias=config.bias)
        else:
            self.qkv = nn.Linear(config.d_model, q_dim + 2 * kv_dim, bias=config.bias)
        self.out = nn.Linear(q_dim, config.d_model, bias=config.bias)
        self.scale = self.head_dim**-0.5 if config.scale_attention else 1.0
        self.dropout_p = config.attn_dropout
        self.split = (q_dim, kv_dim, kv_dim)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, n, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        causal: bool = False,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
        memory: torch.Tensor | None = None,
        cache: LayerCache | None = None,
    ) -> torch.Tensor:
        """x [B, T, d_model] -> [B, T, d_model].

        mask: additive [B|1, heads|1, T, keys] or None; causal: let SDPA apply the causal mask itself
        (only when there is no other mask); rotary: (cos, sin) for queries and new keys; memory: the
        encoder output, for cross-attention; cache: this layer's KV cache during decoding.
        """
        if self.cross:
            q = self._heads(self.q(x), self.n_heads)
            if cache is not None and cache.cross is not None:
                k, v = cache.cross
            else:
                assert memory is not None, "cross-attention needs the encoder output"
                k, v = (self._heads(t, self.kv_heads) for t in self.kv(memory).chunk(2, dim=-1))
                if cache is not None:
                    cache.cross = (k, v)
        else:
            q, k, v = self.qkv(x).split(self.split, dim=-1)
            q, k, v = (
                self._heads(q, self.n_heads),
                self._heads(k, self.kv_heads),
                self._heads(v, self.kv_heads),
            )
            if rotary is not None:
                q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
            if cache is not None:
                k, v = cache.append(k, v)
        dropout_p = self.dropout_p if self.training else 0.0
        if torch.is_grad_enabled() and (dropout_p > 0 or (mask is not None and mask.requires_grad)):
            out = self._explicit_attention(q, k, v, mask, causal, dropout_p)
        else:
            out = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                is_causal=causal and mask is None,
                scale=self.scale,
                enable_gqa=self.kv_heads != self.n_heads,
            )
        b, _, t, _ = out.shape
        return self.out(out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))

    def _explicit_attention(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
        causal: bool,
        dropout_p: float,
    ) -> torch.Tensor:
        """softmax(q k^T * scale + mask) v, written out for training on CPU.

        SDPA falls back to its slower math kernel when the mask needs a gradient (T5's learned position
        bias) or when attention dropout is on; written out, the same computation is ~30% faster there
        and can use the cheap dropout.
        """
        if self.kv_heads != self.n_heads:
            group = self.n_heads // self.kv_heads
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        if self.scale != 1.0:
            q = q * self.scale
        scores = q @ k.transpose(-1, -2)
        if mask is not None:
            scores = scores + mask
        elif causal:
            t, s = scores.shape[-2:]
            future = torch.ones(t, s, dtype=torch.bool, device=q.device).triu(s - t + 1)
            scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores.float(), dim=-1).to(v.dtype)
        return dropout(probs, dropout_p, True) @ v
