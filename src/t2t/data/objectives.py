"""Pretraining objectives on token ids: T5 span corruption, prefix LM, causal-LM chunks, BERT masked LM
and next-sentence pairs. Each is a pure function of its tokens and a `torch.Generator`, so a stream can
give every example its own seeded generator and resume anywhere.

Span corruption follows t5.data.preprocessors (`random_spans_helper`, `random_spans_noise_mask`,
`noise_span_to_unique_sentinel`): the same counts, the same uniformly random segmentation, the same
sentinel order; rounding is half-to-even as tf.round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from t2t.errors import ConfigError

Ids = Sequence[int] | torch.Tensor


def _long(token_ids: Ids) -> torch.Tensor:
    return torch.as_tensor(token_ids, dtype=torch.long).reshape(-1)


def _number(name: str, value: Any) -> float:
    """`value` as a finite float, or a ConfigError naming the option (NaN would pass every comparison)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} should be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} should be a finite number")
    return float(value)


def check_span_options(noise_density: Any, mean_noise_span_length: Any) -> None:
    """Span corruption's settings, checked before any work: outside these ranges the length search of
    span_corruption_lengths never ends (density >= 1) or the counts divide by zero (mean 0)."""
    density = _number("noise_density", noise_density)
    if not 0.0 < density < 1.0:
        raise ConfigError(
            f"noise_density={noise_density!r} is out of range (0, 1): it is the share of tokens "
            "corrupted (T5: 0.15)"
        )
    mean = _number("mean_noise_span_length", mean_noise_span_length)
    if mean < 1.0:
        raise ConfigError(
            f"mean_noise_span_length={mean_noise_span_length!r} should be at least 1: it is the mean "
            "length in tokens of a corrupted span (T5: 3.0)"
        )


def check_mlm_probability(mlm_probability: Any) -> None:
    """The share of tokens BERT's masked LM predicts; 0 or 1 leaves nothing to learn from."""
    p = _number("mlm_probability", mlm_probability)
    if not 0.0 < p < 1.0:
        raise ConfigError(f"mlm_probability={mlm_probability!r} is out of range (0, 1) (BERT: 0.15)")


def _check_positive(name: str, value: int | None, least: int = 1) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
        raise ConfigError(f"{name}={value!r} should be an integer of at least {least}")


def _noise_counts(length: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    """(noise tokens, noise spans) for a sequence of `length` tokens, as T5 counts them."""
    check_span_options(noise_density, mean_noise_span_length)
    num_noise = round(length * noise_density)
    num_noise = min(max(num_noise, 1), length - 1)
    num_spans = max(round(num_noise / mean_noise_span_length), 1)
    return num_noise, num_spans


def span_corruption_lengths(
    inputs_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 3.0
) -> tuple[int, int]:
    """(tokens_length, targets_length): how many raw tokens to cut so that the corrupted inputs (kept
    tokens + one sentinel a span + EOS) fill `inputs_length` exactly, and the targets' length then.
    T5's random_spans_helper: 512 -> (568, 114)."""
    if inputs_length < 2:
        raise ConfigError(f"inputs_length={inputs_length} is too short for span corruption; use at least 2")
    check_span_options(noise_density, mean_noise_span_length)  # else the search below may never end

    def lengths(tokens: int) -> tuple[int, int]:
        num_noise = round(tokens * noise_density)
        num_spans = round(num_noise / mean_noise_span_length)
        return tokens - num_noise + num_spans + 1, num_noise + num_spans + 1

    tokens_length = inputs_length - 1
    while lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    inputs, targets = lengths(tokens_length)
    if noise_density == 0.5 and targets > inputs:  # T5's adjustment so targets match a round inputs size
        tokens_length -= 1
        targets -= 1
    return tokens_length, targets


def _random_segmentation(num_items: int, num_segments: int, generator: torch.Generator | None) -> np.ndarray:
    """Lengths of `num_segments` non-empty segments, a uniformly random partition of `num_items`."""
    order = torch.randperm(num_items - 1, generator=generator).numpy()
    starts = np.zeros(num_items, dtype=np.int64)
    starts[1:] = order < num_segments - 1  # a random (num_segments - 1)-subset of the gaps starts a segment
    return np.bincount(np.cumsum(starts), minlength=num_segments)


def _noise_mask(
    length: int, noise_density: float, mean: float, generator: torch.Generator | None
) -> np.ndarray:
    original = length
    length = max(length, 2)  # as T5: avoid degenerate counts
    num_noise, num_spans = _noise_counts(length, noise_density, mean)
    interleaved = np.stack(
        [
            _random_segmentation(length - num_noise, num_spans, generator),
            _random_segmentation(num_noise, num_spans, generator),
        ],
        1,
    ).reshape(-1)
    span_start_indicator = np.bincount(np.cumsum(interleaved)[:-1], minlength=length)[:length]
    return (np.cumsum(span_start_indicator) % 2 == 1)[:original]


def random_spans_noise_mask(
    length: int,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A bool mask of `length`: spans alternate non-noise / noise, starting with non-noise and ending
    with noise; given the counts, every such mask is equally likely."""
    return torch.from_numpy(_noise_mask(length, noise_density, mean_noise_span_length, generator))


def _noise_span_to_unique_sentinel(
    tokens: np.ndarray, noise: np.ndarray, sentinel_start_id: int
) -> np.ndarray:
    """Each noise span becomes one sentinel (the k-th span: sentinel_start_id - k); its other tokens go."""
    previous = np.concatenate([[False], noise[:-1]])
    first = noise & ~previous
    sentinels = sentinel_start_id + 1 - np.cumsum(first)
    return np.where(first, sentinels, tokens)[~(noise & previous)]


def span_corruption(
    token_ids: Ids,
    *,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
    sentinel_start_id: int,
    eos_id: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets): noise spans replaced by <extra_id_0>, <extra_id_1>, ... in the inputs; the
    targets are the sentinels each followed by its removed span; both end with EOS."""
    tokens = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    noise = _noise_mask(len(tokens), noise_density, mean_noise_span_length, generator)
    inputs = _noise_span_to_unique_sentinel(tokens, noise, sentinel_start_id)
    targets = _noise_span_to_unique_sentinel(tokens, ~noise, sentinel_start_id)
    return torch.from_numpy(np.append(inputs, eos_id)), torch.from_numpy(np.append(targets, eos_id))


def noise_spans(tokens_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 3.0) -> int:
    """Sentinels span corruption uses on `tokens_length` tokens (the tokenizer must have that many)."""
    return _noise_counts(max(tokens_length, 2), noise_density, mean_noise_span_length)[1]


def prefix_lm(
    token_ids: Ids,
    *,
    eos_id: int | None,
    generator: torch.Generator | None = None,
    max_inputs: int | None = None,
    max_targets: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets): the text cut at a uniformly random point, the prefix as inputs and the rest as
    targets (each at least one token, at most max_inputs / max_targets before EOS); EOS appended."""
    tokens = _long(token_ids)
    n = len(tokens)
    if n < 2:
        raise ConfigError(f"prefix LM needs at least 2 tokens to split, got {n}")
    low = max(1, n - max_targets) if max_targets else 1
    high = min(n - 1, max_inputs) if max_inputs else n - 1
    if low > high:
        raise ConfigError(f"{n} tokens do not fit max_inputs={max_inputs} + max_targets={max_targets}")
    split = int(torch.randint(low, high + 1, (1,), generator=generator))
    end = tokens.new_tensor([] if eos_id is None else [eos_id])
    return torch.cat([tokens[:split], end]), torch.cat([tokens[split:], end])


def causal_lm_chunks(token_ids: Ids, max_length: int, *, eos_id: int | None) -> list[torch.Tensor]:
    """A document (EOS appended, so a model learns where texts end) cut into pieces of max_length."""
    _check_positive("max_length", max_length)
    tokens = _long(token_ids)
    if eos_id is not None:
        tokens = torch.cat([tokens, tokens.new_tensor([eos_id])])
    return list(torch.split(tokens, max_length))


def mask_tokens(
    token_ids: Ids,
    *,
    special_ids: Sequence[int],
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator | None = None,
    mlm_probability: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked LM: round(15%) of the non-special tokens chosen (at least one), of those 80% become
    [MASK], 10% a random non-special token, 10% stay; labels are the originals there and -100 elsewhere."""
    check_mlm_probability(mlm_probability)
    tokens = _long(token_ids)
    special = torch.as_tensor(list(special_ids), dtype=torch.long)
    candidates = torch.nonzero(~torch.isin(tokens, special)).reshape(-1)
    labels = torch.full_like(tokens, -100)
    if len(candidates) == 0:
        return tokens.clone(), labels
    count = min(len(candidates), max(1, round(len(candidates) * mlm_probability)))
    chosen = candidates[torch.randperm(len(candidates), generator=generator)[:count]]
    labels[chosen] = tokens[chosen]
    inputs = tokens.clone()
    roll = torch.rand(count, generator=generator)
    masked, randomised = chosen[roll < 0.8], chosen[(roll >= 0.8) & (roll < 0.9)]
    inputs[masked] = mask_id
    allowed = torch.nonzero(~torch.isin(torch.arange(vocab_size), special)).reshape(-1)
    picks = torch.randint(len(allowed), (len(randomised),), generator=generator)
    inputs[randomised] = allowed[picks]
    return inputs, labels


def next_sentence_pairs(
    sentences: Sequence[Sequence[int]],
    random_sentences: Callable[[], Sequence[Sequence[int]]],
    *,
    max_tokens: int,
    generator: torch.Generator | None = None,
) -> list[tuple[list[int], list[int], int]]:
    """BERT's pairs from one document's sentences: (A, B, label), label 0 when B is the text that
    follows A and 1 when B comes from another document (`random_sentences()`: the caller guarantees
    it is another document's). A and B together hold at most max_tokens (the longer one cut at its end).

    A is a run of sentences filling about max_tokens cut at a random sentence boundary; then a fair coin
    picks the label, and the pair is built for it. Every pair can be either kind, so the labels are 50/50
    whatever the document looks like: a last sentence with no sentence after it is split at a random
    token into A and its real continuation (BERT instead always makes it a random pair, which biases the
    labels towards 1); only a last sentence of one token makes no pair."""
    _check_positive("max_tokens", max_tokens, least=2)  # room for one token of A and one of B
    pairs: list[tuple[list[int], list[int], int]] = []
    i = 0
    while i < len(sentences):
        chunk: list[Sequence[int]] = []
        size = 0
        while i < len(sentences) and (size < max_tokens or not chunk):
            chunk.append(sentences[i])
            size += len(sentences[i])
            i += 1
        last_alone = len(chunk) == 1 and i == len(sentences)
        if last_alone and len(chunk[0]) < 2:
            break
        if len(chunk) > 1:
            cut = int(torch.randint(1, len(chunk), (1,), generator=generator))
            a, rest = [t for s in chunk[:cut] for t in s], [t for s in chunk[cut:] for t in s]
        elif last_alone:
            cut = int(torch.randint(1, len(chunk[0]), (1,), generator=generator))
            a, rest = list(chunk[0][:cut]), list(chunk[0][cut:])
        else:  # one long sentence: B is the next one
            cut, a, rest = 1, list(chunk[0]), list(sentences[i])
        use_random = float(torch.rand(1, generator=generator)) < 0.5
        if use_random:
            b = [t for s in random_sentences() for t in s][: max(1, max_tokens - len(a))]
            if len(chunk) > 1:
                i -= len(chunk) - cut  # the unused sentences start the next pair, as BERT does
        else:
            b = rest
            if len(chunk) == 1 and not last_alone:
                i += 1
        pairs.append((*truncate_pair(a, b, max_tokens), int(use_random)))
    return pairs


def truncate_pair(a: list[int], b: list[int], max_tokens: int) -> tuple[list[int], list[int]]:
    """Cut the longer of the two at its end until both fit max_tokens (BERT's truncate_seq_pair)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_tokens:
        (a if len(a) > len(b) else b).pop()
    return a, b
