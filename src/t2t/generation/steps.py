"""Model adapters for the decode loops: give them the decoder-side tokens so far, get next-token logits.

The search loops (greedy / sampling, beam) own the token history and know nothing of architectures or
caches; these adapters hide both. `capacity` is the most decoder-side tokens the cache can come to hold
(the prompt or decoder start token, plus the new tokens but the last, which is never fed back): a
ceiling for buffers that grow with the tokens (`widen`), not a size reserved up front. With a KV cache,
a step feeds only the tokens the cache has not seen (the whole prompt first, then one token); without
it, every step reruns the whole sequence, which is slow and exists to show that the cache changes
nothing.

Rows come expanded (batch x beams or x return sequences), but the expensive first pass runs once per
example: the encoder (T5) or the prompt's forward pass (GPT-2 / Llama) sees each input once and its
result is repeated for the expanded rows, where transformers runs the prompt once per beam.
"""

from __future__ import annotations

import torch

from t2t.generation.kernels import vocab_logits
from t2t.model.cache import KVCache, grown_capacity
from t2t.model.models import DecoderLM, EncoderDecoderLM


def widen(buffer: torch.Tensor, needed: int, ceiling: int, fill: int) -> torch.Tensor:
    """buffer [..., W], or a copy doubled in its last dimension (at most `ceiling`, at least `needed`)
    with `fill` in the new columns when W < needed: token buffers grow as tokens come, so memory follows
    the tokens generated, not max_new_tokens, at an amortised O(1) copy per token."""
    width = buffer.shape[-1]
    if needed <= width:
        return buffer
    grown = buffer.new_full((*buffer.shape[:-1], grown_capacity(width, needed, ceiling)), fill)
    grown[..., :width] = buffer
    return grown


class _CachedSteps:
    cache: KVCache | None

    def reorder(self, index: torch.Tensor) -> None:
        """Rows move to `index` (beam search). They stay within their example, so what is shared by an
        example's rows (encoder output, cross-attention keys/values, padding mask) is still right."""
        if self.cache is not None:
            self.cache.reorder(index)


class EncoderDecoderSteps(_CachedSteps):
    """T5: the encoder runs once; its keys/values enter the cache on the first decoder step."""

    def __init__(
        self,
        model: EncoderDecoderLM,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        *,
        expand: int,
        use_cache: bool,
        capacity: int,
    ) -> None:
        self.model = model
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # no padding: no cross-attention mask to build at every step
        memory = model.encode(input_ids, attention_mask)
        self.memory: torch.Tensor | None = memory.repeat_interleave(expand, dim=0) if expand > 1 else memory
        self.memory_mask = (
            attention_mask.repeat_interleave(expand, dim=0)
            if attention_mask is not None and expand > 1
            else attention_mask
        )
        self.cache: KVCache | None = model.new_cache(capacity) if use_cache else None

    def __call__(self, sequence: torch.Tensor) -> torch.Tensor:
        """sequence [N, L] decoder tokens so far (decoder start first) -> logits [N, V] for token L+1."""
        model = self.model
        fed = 0 if self.cache is None else self.cache.length
        hidden = model.decoder(
            model.embed(sequence[:, fed:]),
            memory=self.memory,
            memory_mask=self.memory_mask,
            cache=self.cache,
        )
        if self.cache is not None:
            self.memory = None  # its keys/values are cached now; free the encoder output
        return vocab_logits(model, hidden[:, -1]).float()


class DecoderOnlySteps(_CachedSteps):
    """GPT-2 / Llama: left-padded prompts, positions counted from each row's first real token."""

    def __init__(
        self,
        model: DecoderLM,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        *,
        expand: int,
        use_cache: bool,
        capacity: int,
    ) -> None:
        self.model = model
        self.expand = expand
        self.prompt_length = input_ids.shape[1]
        self.capacity = capacity
        self.cache: KVCache | None = model.new_cache(capacity) if use_cache else None
        # Without padding the defaults (no mask, positions 0..L-1) are right and let attention skip the
        # mask. With padding: the mask grows by one real token per step, as transformers' does, and a
        # generated token's position is its row's real prompt tokens plus those generated before it.
        self.mask: torch.Tensor | None = None
        self.positions: torch.Tensor | None = None
        self.real: torch.Tensor | None = None
        if attention_mask is not None and not bool(attention_mask.all()):
            self.mask = attention_mask.repeat_interleave(expand, dim=0)
            self.positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
            self.real = self.mask.sum(-1, keepdim=True)

    def _position_ids(self, rows: slice, start: int, end: int) -> torch.Tensor | None:
        if self.positions is None or self.real is None:
            return None
        p = self.prompt_length
        if end <= p:
            return self.positions[rows, start:end]
        offsets = torch.arange(max(start, p) - p, end - p, device=self.real.device)
        generated = self.real[rows] + offsets
        return generated if start >= p else torch.cat((self.positions[rows, start:], generated), dim=1)

    def _logits(self, ids: torch.Tensor, start: int, end: int, rows: slice) -> torch.Tensor:
        model = self.model
        if self.mask is not None:
            self.mask = widen(self.mask, end, self.capacity, 1)
        hidden = model.decoder(
            model.embed(ids),
            attention_mask=self.mask[rows, :end] if self.mask is not None else None,
            position_ids=self._position_ids(rows, start, end),
            cache=self.cache,
        )
        # Only the last position's logits are needed: the vocabulary projection of a whole prompt is
        # the costliest matrix product of a short generation.
        return vocab_logits(model, hidden[:, -1]).float()

    def __call__(self, sequence: torch.Tensor) -> torch.Tensor:
        """sequence [N, L] prompt + generated tokens -> logits [N, V] for token L+1."""
        length = sequence.shape[1]
        every = slice(None)
        if self.cache is None:
            return self._logits(sequence, 0, length, every)
        if self.cache.length > 0:
            return self._logits(sequence[:, self.cache.length :], self.cache.length, length, every)
        # First step: the prompt once per example, then the cache and logits repeated for its rows.
        once = slice(None, None, self.expand)
        logits = self._logits(sequence[once], 0, length, once)
        if self.expand > 1:
            examples = torch.arange(logits.shape[0], device=logits.device)
            self.cache.reorder(examples.repeat_interleave(self.expand))
            logits = logits.repeat_interleave(self.expand, dim=0)
        return logits


Steps = EncoderDecoderSteps | DecoderOnlySteps


def make_steps(
    model: EncoderDecoderLM | DecoderLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    expand: int,
    use_cache: bool,
    capacity: int,
) -> Steps:
    kind = EncoderDecoderSteps if isinstance(model, EncoderDecoderLM) else DecoderOnlySteps
    return kind(
        model,  # type: ignore[arg-type]
        input_ids,
        attention_mask,
        expand=expand,
        use_cache=use_cache,
        capacity=capacity,
    )


__all__ = ["DecoderOnlySteps", "EncoderDecoderSteps", "Steps", "make_steps"]
