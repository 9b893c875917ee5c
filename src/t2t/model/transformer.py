"""The residual block and the stack of blocks that every architecture is made of.

A Stack is an encoder (bidirectional self-attention), a decoder with cross-attention (T5's), or a
decoder without it (GPT-2 / Llama); the same Block serves all three. The norm sits before the
sublayer (pre-LN: x + f(norm(x))) or after the residual add (post-LN: norm(x + f(x))).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from t2t.config import ModelConfig
from t2t.errors import T2TError
from t2t.model.attention import Attention
from t2t.model.cache import KVCache, LayerCache
from t2t.model.dropout import Dropout
from t2t.model.feedforward import FeedForward
from t2t.model.masks import additive_mask, allowed_keys, compute_dtype
from t2t.model.norms import make_norm
from t2t.model.positions import AbsolutePositions, RelativePositionBias, Rotary


@dataclass
class StackContext:
    """What every layer of one stack forward shares: masks and rotary angles, computed once."""

    self_mask: torch.Tensor | None
    causal: bool
    rotary: tuple[torch.Tensor, torch.Tensor] | None
    memory: torch.Tensor | None
    memory_mask: torch.Tensor | None


class Block(nn.Module):
    def __init__(self, config: ModelConfig, *, cross: bool) -> None:
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.self_attn = Attention(config)
        self.self_norm = make_norm(config)
        self.cross_attn = Attention(config, cross=True) if cross else None
        self.cross_norm = make_norm(config) if cross else None
        self.ffn = FeedForward(config)
        self.ffn_norm = make_norm(config)
        self.dropout = Dropout(config.dropout)

    def forward(self, x: torch.Tensor, ctx: StackContext, cache: LayerCache | None = None) -> torch.Tensor:
        pre = self.pre_norm
        h = self.self_norm(x) if pre else x
        h = self.self_attn(h, ctx.self_mask, causal=ctx.causal, rotary=ctx.rotary, cache=cache)
        x = x + self.dropout(h) if pre else self.self_norm(x + self.dropout(h))
        if self.cross_attn is not None and self.cross_norm is not None:
            h = self.cross_norm(x) if pre else x
            h = self.cross_attn(h, ctx.memory_mask, memory=ctx.memory, cache=cache)
            x = x + self.dropout(h) if pre else self.cross_norm(x + self.dropout(h))
        h = self.ffn(self.ffn_norm(x) if pre else x)
        return x + self.dropout(h) if pre else self.ffn_norm(x + self.dropout(h))


class Stack(nn.Module):
    """Positions, optional segment embeddings, the blocks and the final (pre-LN) or embedding (post-LN) norm.

    Token embeddings are looked up by the model and passed in, since T5 shares one table between its
    encoder and decoder; everything else positional belongs to the stack.
    """

    def __init__(self, config: ModelConfig, *, n_layers: int, causal: bool, cross: bool) -> None:
        super().__init__()
        self.config = config
        self.causal = causal
        pre = config.norm_position == "pre"
        self.positions = AbsolutePositions(config) if config.position in ("learned", "sinusoidal") else None
        self.relative_bias = (
            RelativePositionBias(config, bidirectional=not causal)
            if config.position == "t5-relative"
            else None
        )
        self.rotary = Rotary(config) if config.position == "rope" else None
        self.token_types = (
            nn.Embedding(config.type_vocab_size, config.d_model) if config.type_vocab_size else None
        )
        self.embed_norm = None if pre else make_norm(config)
        self.layers = nn.ModuleList(Block(config, cross=cross) for _ in range(n_layers))
        self.final_norm = make_norm(config) if pre else None
        self.dropout = Dropout(config.dropout)
        # Training only: each block's activations are recomputed in the backward pass (with the same
        # dropout masks: the RNG state is replayed), so a step keeps one block's activations, not all.
        self.activation_checkpointing = False

    def new_cache(self, capacity: int = 0) -> KVCache:
        return KVCache(len(self.layers), capacity)

    def forward(
        self,
        embeds: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        memory_segment_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """embeds [B, T, d] -> hidden states [B, T, d].

        attention_mask: [B, past + T], 1 for real tokens (with a cache it covers the cached tokens too).
        position_ids: [B, T]; default: the index in the sequence (after the cached tokens).
        segment_ids / memory_segment_ids: packing ids [B, T] / [B, S]; attention stays inside an example.
        memory / memory_mask: encoder output [B, S, d] and its padding mask [B, S], for cross-attention.
        """
        length = embeds.shape[1]
        device = embeds.device
        past = cache.length if cache is not None else 0
        key_len = past + length
        timeline = torch.arange(past, key_len, device=device)[None]
        positions = timeline if position_ids is None else position_ids
        if self.positions is not None and position_ids is None and key_len > self.positions.max_positions:
            raise T2TError(
                f"sequence of {key_len} tokens is longer than max_positions={self.positions.max_positions}; "
                "truncate the input"
            )

        h = embeds
        if self.positions is not None:
            h = h + self.positions(positions)
        if self.token_types is not None:
            types = token_type_ids if token_type_ids is not None else torch.zeros_like(timeline)
            h = h + self.token_types(types)
        if self.embed_norm is not None:
            h = self.embed_norm(h)
        h = self.dropout(h)

        if attention_mask is not None and attention_mask.shape[-1] != key_len:
            raise T2TError(
                f"attention_mask covers {attention_mask.shape[-1]} tokens but the input (with the cache) "
                f"has {key_len}"
            )
        dtype = compute_dtype(h)
        bias = None
        if self.relative_bias is not None:
            # Packed rows restart positions per example; otherwise distances are cache-timeline indices.
            if position_ids is not None and cache is None:
                bias = self.relative_bias(position_ids, position_ids)
            else:
                bias = self.relative_bias(timeline, torch.arange(key_len, device=device)[None])
        allowed = allowed_keys(
            q_len=length,
            k_len=key_len,
            past=past,
            causal=self.causal,
            key_padding=attention_mask,
            query_segments=segment_ids,
            key_segments=segment_ids,
            device=device,
        )
        sdpa_causal = self.causal and past == 0 and length > 1 and bias is None
        if sdpa_causal and attention_mask is None and segment_ids is None:
            self_mask = None  # let SDPA apply the causal mask itself (its fastest path)
        else:
            sdpa_causal = False
            self_mask = additive_mask(allowed, bias, dtype)

        cross_mask = None
        if memory is not None or memory_mask is not None:
            # With a cache, later steps pass only memory_mask: the encoder keys/values are cached.
            memory_len = memory.shape[1] if memory is not None else memory_mask.shape[1]  # type: ignore[union-attr]
            cross_allowed = allowed_keys(
                q_len=length,
                k_len=memory_len,
                past=0,
                causal=False,
                key_padding=memory_mask,
                query_segments=segment_ids,
                key_segments=memory_segment_ids,
                device=device,
            )
            cross_mask = additive_mask(cross_allowed, None, dtype)
        rotary = self.rotary(positions) if self.rotary is not None else None
        ctx = StackContext(self_mask, sdpa_causal, rotary, memory, cross_mask)

        recompute = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        for i, layer in enumerate(self.layers):
            layer_cache = cache.layers[i] if cache is not None else None
            if recompute:
                h = checkpoint(layer, h, ctx, layer_cache, use_reentrant=False)
            else:
                h = layer(h, ctx, layer_cache)
        if self.final_norm is not None:
            h = self.dropout(self.final_norm(h))
        return h


def set_activation_checkpointing(model: nn.Module, on: bool = True) -> None:
    """Recompute every Stack's blocks in the backward pass (on) or keep their activations (off)."""
    for module in model.modules():
        if isinstance(module, Stack):
            module.activation_checkpointing = on
