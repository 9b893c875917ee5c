"""Prompts as the model takes them: encoded, checked against the model's length limit, and padded.

Encoder inputs (T5) are right-padded and truncated at the end, keeping their closing </s>, as T5's
preprocessing does. Decoder-only prompts are left-padded, so every row's next token comes right after
its last real token, and truncated at the start, keeping the end that the model continues (and a
leading <bos> when the tokenizer adds one).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Protocol

import torch

from t2t.errors import T2TError
from t2t.generation.inputs import prompt_limit
from t2t.model.models import EncoderDecoderLM, T2TModel


class TokenizerLike(Protocol):
    """The part of t2t.tokenizer.Tokenizer that generation uses."""

    eos_id: int | None
    bos_id: int | None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...


class TruncationWarning(UserWarning):
    """A prompt was longer than the model takes and was cut."""


def pad_rows(
    rows: Sequence[Sequence[int]], pad_id: int, *, left: bool, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> (ids [B, L], mask [B, L]), padded on the left or the right."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(list(row), dtype=torch.long)
        mask[i, span] = 1
    return ids.to(device), mask.to(device)


def _cut(ids: list[int], limit: int, tokenizer: TokenizerLike, encoder_input: bool) -> list[int]:
    if encoder_input:
        keep_last = bool(ids) and ids[-1] == tokenizer.eos_id
        return ids[: limit - 1] + ids[-1:] if keep_last else ids[:limit]
    keep_first = bool(ids) and tokenizer.bos_id is not None and ids[0] == tokenizer.bos_id
    return ids[:1] + ids[len(ids) - limit + 1 :] if keep_first else ids[len(ids) - limit :]


def encode_prompts(
    model: T2TModel,
    tokenizer: TokenizerLike,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    truncate: bool = True,
    labels: Sequence[str] | None = None,
) -> list[list[int]]:
    """Encode prompts; an empty one is an error, a too long one is cut with a TruncationWarning (or is an
    error when truncate=False). labels name the prompts in messages (default: 'prompt N')."""
    names = list(labels) if labels is not None else [f"prompt {i}" for i in range(len(prompts))]
    limit = prompt_limit(model, max_new_tokens)
    encoder_input = isinstance(model, EncoderDecoderLM)
    encoded = []
    for name, prompt in zip(names, prompts, strict=True):
        if not isinstance(prompt, str):
            raise T2TError(f"{name}: a prompt should be text, got {type(prompt).__name__}")
        if not prompt.strip():
            raise T2TError(f"{name}: the prompt is empty; give some text to continue")
        ids = tokenizer.encode(prompt)
        if len(ids) > limit:
            if not truncate:
                raise T2TError(
                    f"{name}: the prompt has {len(ids)} tokens, more than the {limit} this model takes; "
                    "shorten it or allow truncation"
                )
            warnings.warn(
                f"{name}: the prompt has {len(ids)} tokens, more than the {limit} this model takes; "
                f"kept the {'first' if encoder_input else 'last'} {limit}",
                TruncationWarning,
                stacklevel=2,
            )
            ids = _cut(ids, limit, tokenizer, encoder_input)
        encoded.append(ids)
    return encoded


__all__ = ["TokenizerLike", "TruncationWarning", "encode_prompts", "pad_rows"]
