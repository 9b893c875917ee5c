"""Logits processors: each takes the token history [N, L] and next-token scores [N, V] and returns new scores.

They reproduce transformers' processors of the same names operation for operation (tests compare them
on random scores), and `build_processors` puts them in the order transformers applies them: penalties
and bans first, then, when sampling, temperature, top-k and top-p. Greedy decoding without penalties
builds none, so the decode loop does no full-vocabulary work beyond the argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F

from t2t.generation.config import GenerationConfig


class LogitsProcessor(Protocol):
    def __call__(self, history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor: ...


class RepetitionPenalty:
    """CTRL's penalty (Keskar et al. 2019): a token already in the history has its score divided by
    `penalty` when positive and multiplied when negative. `ignore_prefix` [N] skips each row's first
    positions (the left padding of decoder-only prompts)."""

    def __init__(self, penalty: float, ignore_prefix: torch.Tensor | None = None) -> None:
        self.penalty = penalty
        self.ignore_prefix = ignore_prefix

    def __call__(self, history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        vocab = scores.shape[-1]
        ids = history
        if self.ignore_prefix is not None:
            positions = torch.arange(history.shape[1], device=history.device)
            ids = ids.masked_fill(positions[None, :] < self.ignore_prefix[:, None], vocab)
        ids = ids.clamp(max=vocab)  # ignored (and out-of-head) ids land in a spare column, dropped below
        padded = F.pad(scores, (0, 1))
        picked = padded.gather(1, ids)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return padded.scatter(1, ids, picked)[:, :vocab]


class NoRepeatNGram:
    """Ban any token that would complete an n-gram already present in the history."""

    def __init__(self, ngram_size: int) -> None:
        self.n = ngram_size

    def __call__(self, history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        length = history.shape[1]
        if length < self.n:
            return scores
        # A window whose first n-1 tokens equal the current suffix bans its own last token.
        prefix = history[:, length + 1 - self.n :]
        windows = history.unfold(dimension=1, size=self.n, step=1)
        matches = (windows[..., :-1] == prefix.unsqueeze(1)).all(dim=-1)
        vocab = scores.shape[-1]
        banned = scores.new_zeros((scores.shape[0], vocab + 1), dtype=torch.bool)
        banned.scatter_(1, torch.where(matches, windows[..., -1].clamp(max=vocab), vocab), True)
        return scores.masked_fill(banned[:, :vocab], -float("inf"))


class MinNewTokens:
    """Forbid the end-of-sequence tokens until `min_new_tokens` tokens follow the prompt."""

    def __init__(self, prompt_length: int, min_new_tokens: int, eos_ids: Sequence[int]) -> None:
        self.prompt_length = prompt_length
        self.min_new_tokens = min_new_tokens
        self.eos_ids = list(eos_ids)

    def __call__(self, history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if history.shape[1] - self.prompt_length >= self.min_new_tokens:
            return scores
        scores = scores.clone()
        scores[:, self.eos_ids] = -float("inf")
        return scores


class Temperature:
    def __init__(self, temperature: float) -> None:
        self.temperature = temperature

    def __call__(self, history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores / self.temperature


class TopK:
    """Keep the k best tokens (ties with the k-th included, as transformers does)."""

    def __init__(self, top_k: int, min_tokens_to_keep: int = 1) -> None:
        self.top_k = max(top_k, min_tokens_to_keep)

    def __call__(self, history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        k = min(self.top_k, scores.shape[-1])
        kth = torch.topk(scores, k)[0][..., -1, None]
        return scores.masked_fill(scores < kth, -float("inf"))


class TopP:
    """Nucleus sampling (Holtzman et al. 2019): keep the smallest set of tokens whose probability
    reaches top_p."""

    def __init__(self, top_p: float, min_tokens_to_keep: int = 1) -> None:
        self.top_p = top_p
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, history: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        sorted_scores, order = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - self.top_p)
        remove[..., -self.min_tokens_to_keep :] = False
        remove = remove.scatter(1, order, remove)
        return scores.masked_fill(remove, -float("inf"))


def build_processors(
    config: GenerationConfig, *, prompt_length: int, ignore_prefix: torch.Tensor | None = None
) -> list[LogitsProcessor]:
    """The processors `config` asks for, in transformers' order. `config` must be resolved (eos ids set)."""
    processors: list[LogitsProcessor] = []
    if config.repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(config.repetition_penalty, ignore_prefix))
    if config.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGram(config.no_repeat_ngram_size))
    if config.min_new_tokens > 0 and config.eos_ids:
        processors.append(MinNewTokens(prompt_length, config.min_new_tokens, config.eos_ids))
    if config.do_sample:
        # Beam sampling keeps one token besides the eos tokens, so some beam can always go on.
        keep = len(config.eos_ids) + 1 if config.num_beams > 1 else 1
        if config.temperature != 1.0:
            processors.append(Temperature(config.temperature))
        if config.top_k != 0:
            processors.append(TopK(config.top_k, keep))
        if config.top_p < 1.0:
            processors.append(TopP(config.top_p, keep))
    return processors


def apply_processors(
    processors: Sequence[LogitsProcessor], history: torch.Tensor, scores: torch.Tensor
) -> torch.Tensor:
    for processor in processors:
        scores = processor(history, scores)
    return scores


__all__ = [
    "LogitsProcessor",
    "MinNewTokens",
    "NoRepeatNGram",
    "RepetitionPenalty",
    "Temperature",
    "TopK",
    "TopP",
    "apply_processors",
    "build_processors",
]
