"""Key/value cache for incremental decoding.

Self-attention keys and values go into buffers that grow by doubling, so a decoding step writes one
slice instead of concatenating the whole history (which HF's dynamic cache does and which makes each
step cost grow with the output). The capacity a generation asks for (prompt + max_new_tokens) is a
ceiling, not an up-front allocation: memory follows the tokens actually generated, so a generous
max_new_tokens costs nothing when the answers end early. Cross-attention keys and values are computed
from the encoder output once per generation and kept.
"""

from __future__ import annotations

import torch

MIN_CAPACITY = 16  # tokens a buffer starts with when it starts small; it doubles from there


def grown_capacity(current: int, needed: int, ceiling: int = 0) -> int:
    """The next size of a buffer holding `current` tokens that must hold `needed`: double (amortised O(1)
    copying per token), but never past `ceiling` (the most it will ever need; 0: unknown)."""
    size = max(2 * current, MIN_CAPACITY)
    if ceiling:
        size = min(size, ceiling)
    return max(size, needed)


class LayerCache:
    """One layer's cached self-attention keys/values (and its cross-attention keys/values)."""

    def __init__(self, capacity: int = 0) -> None:
        self.capacity_hint = capacity  # the most tokens it will hold (0: unknown); a ceiling for growth
        self.keys: torch.Tensor | None = None  # [B, kv_heads, capacity, head_dim]
        self.values: torch.Tensor | None = None
        self.length = 0
        self.cross: tuple[torch.Tensor, torch.Tensor] | None = None

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add [B, kv_heads, T, head_dim] new keys/values; return views of everything cached so far."""
        new = keys.shape[2]
        end = self.length + new
        if self.keys is None:
            # A prompt (several tokens at once) gets a buffer of its own size; growth comes with the
            # decoding steps. The prompt pass's activations and a larger cache then never coexist, which
            # keeps generation's peak memory down.
            size = end if new > 1 else grown_capacity(0, end, self.capacity_hint)
            shape = (*keys.shape[:2], size, keys.shape[3])
            self.keys = keys.new_empty(shape)
            self.values = values.new_empty(shape)
        elif end > self.keys.shape[2]:
            self._grow(grown_capacity(self.keys.shape[2], end, self.capacity_hint))
        assert self.values is not None
        self.keys[:, :, self.length : end] = keys
        self.values[:, :, self.length : end] = values
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def _grow(self, capacity: int) -> None:
        assert self.keys is not None and self.values is not None
        shape = (*self.keys.shape[:2], capacity, self.keys.shape[3])
        keys, values = self.keys.new_empty(shape), self.values.new_empty(shape)
        keys[:, :, : self.length] = self.keys[:, :, : self.length]
        values[:, :, : self.length] = self.values[:, :, : self.length]
        self.keys, self.values = keys, values

    def reorder(self, index: torch.Tensor, cross: bool) -> None:
        if self.keys is not None and self.values is not None:
            self.keys = self.keys.index_select(0, index)
            self.values = self.values.index_select(0, index)
        if cross and self.cross is not None:
            self.cross = (self.cross[0].index_select(0, index), self.cross[1].index_select(0, index))


class KVCache:
    """The cache of a whole decoder stack: one LayerCache per layer, all of the same length."""

    def __init__(self, n_layers: int, capacity: int = 0) -> None:
        self.layers = [LayerCache(capacity) for _ in range(n_layers)]

    @property
    def length(self) -> int:
        """Tokens already cached (the position of the next token in the cache timeline)."""
        return self.layers[0].length

    def reorder(self, index: torch.Tensor, cross: bool = False) -> None:
        """Select batch rows (beam search). Cross-attention entries are identical across the beams of one
        example, so they need reordering only when rows move between examples (`cross=True`)."""
        for layer in self.layers:
            layer.reorder(index, cross)
