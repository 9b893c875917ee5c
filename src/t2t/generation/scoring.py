"""Candidate scoring: the log-likelihood of given targets, the way T5 ranks class labels and answers.

`score(model, input_ids, candidate_ids)` teacher-forces each candidate and sums the log-probabilities of
its tokens (T5 candidates end with </s>, so "positive" and "positive review" differ). An encoder-decoder
runs its encoder once per input for all of that input's candidates. `pick_best` does the same from text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from t2t.errors import T2TError
from t2t.generation.inputs import check_ids, check_mask, check_model
from t2t.generation.search import decoding_mode
from t2t.generation.text import TokenizerLike, encode_prompts, pad_rows
from t2t.model.loss import IGNORE_INDEX
from t2t.model.models import DecoderLM, EncoderDecoderLM, T2TModel
from t2t.utils import delegates

REDUCTIONS = ("sum", "mean")


def _candidates(
    model: T2TModel, candidate_ids: Any, candidate_mask: Any | None, batch: int
) -> tuple[torch.Tensor, bool]:
    """Candidates as right-padded labels [B, C, T] (-100 on padding); and whether one candidate per input
    was given."""
    cands = torch.as_tensor(candidate_ids).long()
    single = cands.dim() == 2
    if single:
        cands = cands[:, None]
    if cands.dim() != 3 or cands.shape[0] != batch:
        raise T2TError(
            f"candidate_ids should be [batch={batch}, length] or [batch={batch}, candidates, length], "
            f"got shape {tuple(torch.as_tensor(candidate_ids).shape)}"
        )
    valid = cands != IGNORE_INDEX
    if candidate_mask is not None:
        mask = torch.as_tensor(candidate_mask).bool()
        mask = mask[:, None] if single else mask
        if mask.shape != cands.shape:
            raise T2TError(
                f"candidate_mask has shape {tuple(mask.shape)}, candidate_ids {tuple(cands.shape)}"
            )
        valid &= mask
    labels = torch.full_like(cands, IGNORE_INDEX)
    vocab = model.config.vocab_size
    for b in range(cands.shape[0]):
        for c in range(cands.shape[1]):
            real = cands[b, c][valid[b, c]]
            if len(real) == 0:
                raise T2TError(
                    f"candidate {c} of input {b} has no tokens; every candidate needs at least one"
                )
            if bool(((real < 0) | (real >= vocab)).any()):
                raise T2TError(f"candidate {c} of input {b} has an id outside the vocabulary [0, {vocab})")
            labels[b, c, : len(real)] = real
    return labels.to(model.device), single


def _prompt_rows(model: DecoderLM, input_ids: Any, attention_mask: Any | None) -> list[list[int]]:
    """Each decoder-only prompt's real tokens (any padding side)."""
    ids = check_ids(model, "input_ids", input_ids)
    if attention_mask is None:
        return ids.tolist()
    mask = torch.as_tensor(attention_mask).to(ids.device).bool()
    if mask.shape != ids.shape:
        raise T2TError(f"attention_mask has shape {tuple(mask.shape)} but input_ids has {tuple(ids.shape)}")
    rows = [row[keep].tolist() for row, keep in zip(ids, mask)]
    for i, row in enumerate(rows):
        if not row:
            raise T2TError(f"prompt {i} has no real token; a decoder-only model needs one to predict from")
    return rows


def _token_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(label) per position, 0 where the label is -100."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
    return picked.masked_fill(labels == IGNORE_INDEX, 0.0)


def _encoder_decoder(
    model: EncoderDecoderLM, ids: torch.Tensor, mask: torch.Tensor | None, labels: torch.Tensor
) -> torch.Tensor:
    batch, count, length = labels.shape
    memory = model.encode(ids, mask).repeat_interleave(count, dim=0)
    memory_mask = mask.repeat_interleave(count, dim=0) if mask is not None else None
    flat = labels.view(batch * count, length)
    _, logits = model.decode(model.shift_right(flat), memory, memory_mask)
    return _token_log_probs(logits, flat)


def _decoder_only(model: DecoderLM, prompts: list[list[int]], labels: torch.Tensor) -> torch.Tensor:
    """Each row is its prompt's real tokens then the candidate, right-padded; the hidden states just
    before the candidate's tokens predict them (only those positions reach the vocabulary projection)."""
    batch, count, length = labels.shape
    targets = labels.view(batch * count, length)
    rows, starts = [], []
    for r, target in enumerate(targets):
        prompt = prompts[r // count]
        rows.append(prompt + target[target != IGNORE_INDEX].tolist())
        starts.append(len(prompt))
    seq, seq_mask = pad_rows(rows, model.config.pad_id, left=False, device=labels.device)
    hidden = model.decoder(model.embed(seq), attention_mask=seq_mask)
    before = (
        torch.tensor(starts, device=labels.device)[:, None] - 1 + torch.arange(length, device=labels.device)
    )
    before = before.clamp(max=seq.shape[1] - 1)
    picked = hidden.gather(1, before[..., None].expand(-1, -1, hidden.shape[-1]))
    return _token_log_probs(model._vocab_logits(picked, model.lm_head), targets)


def score(
    model: T2TModel,
    input_ids: Any,
    candidate_ids: Any,
    attention_mask: Any | None = None,
    candidate_mask: Any | None = None,
    *,
    reduction: str = "sum",
) -> torch.Tensor:
    """Log-likelihood of each candidate given its input.

    input_ids [B, S] (with attention_mask for padding); candidate_ids [B, T] (one candidate per input)
    or [B, C, T] (C per input), padded with -100 or described by candidate_mask. Returns [B] or [B, C]:
    the summed log-probabilities of each candidate's tokens (reduction='sum', T5's ranking score), or
    their mean (reduction='mean', which favours no length).
    """
    if reduction not in REDUCTIONS:
        raise T2TError(f"reduction={reduction!r} is not one of {', '.join(REDUCTIONS)}")
    model = check_model(model)
    if isinstance(model, EncoderDecoderLM):
        ids = check_ids(model, "input_ids", input_ids)
        mask = check_mask(model, attention_mask, ids)
        batch = ids.shape[0]
    else:
        prompts = _prompt_rows(model, input_ids, attention_mask)
        batch = len(prompts)
    labels, single = _candidates(model, candidate_ids, candidate_mask, batch)
    with decoding_mode(model):
        if isinstance(model, EncoderDecoderLM):
            token_scores = _encoder_decoder(model, ids, mask, labels)
        else:
            token_scores = _decoder_only(model, prompts, labels)
        totals = token_scores.sum(-1)
        if reduction == "mean":
            totals = totals / (labels.view(token_scores.shape) != IGNORE_INDEX).sum(-1)
        totals = totals.view(labels.shape[:2]).clone()
    return totals[:, 0] if single else totals


def rank_candidates(
    model: T2TModel,
    tokenizer: TokenizerLike,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]],
    *,
    reduction: str = "sum",
    batch_size: int = 8,
) -> list[list[float]]:
    """Scores of each prompt's candidate strings (higher is more likely). Decoder-only candidates are
    encoded without special tokens and follow the prompt directly (GPT-2: give them their leading space)."""
    if len(prompts) != len(candidates):
        raise T2TError(f"{len(prompts)} prompts but {len(candidates)} candidate lists")
    model = check_model(model)
    encoder_decoder = isinstance(model, EncoderDecoderLM)
    prompt_ids = encode_prompts(model, tokenizer, prompts, max_new_tokens=1)
    results: list[list[float]] = []
    for begin in range(0, len(prompts), batch_size):
        chunk = range(begin, min(begin + batch_size, len(prompts)))
        width = max(len(candidates[i]) for i in chunk)
        for i in chunk:
            if not candidates[i]:
                raise T2TError(f"prompt {i} has no candidates to choose from")
        rows = []
        for i in chunk:
            options = [tokenizer.encode(c, add_special_tokens=encoder_decoder) for c in candidates[i]]
            rows.append(options + [options[0]] * (width - len(options)))  # filler, dropped below
        length = max(len(o) for row in rows for o in row)
        labels = torch.full((len(rows), width, length), IGNORE_INDEX, dtype=torch.long)
        for r, row in enumerate(rows):
            for c, option in enumerate(row):
                if not option:
                    raise T2TError(f"candidate {c} of prompt {chunk[r]} encodes to no tokens")
                labels[r, c, : len(option)] = torch.tensor(option)
        ids, mask = pad_rows(
            [prompt_ids[i] for i in chunk], model.config.pad_id, left=not encoder_decoder, device=model.device
        )
        scores = score(model, ids, labels, mask, reduction=reduction)
        results += [scores[r, : len(candidates[i])].tolist() for r, i in enumerate(chunk)]
    return results


def pick_best(
    model: T2TModel,
    tokenizer: TokenizerLike,
    prompts: str | Sequence[str],
    candidates: Sequence[str] | Sequence[Sequence[str]],
    **kwargs: Any,
) -> str | list[str]:
    """The most likely candidate string for a prompt (or for each of a list of prompts, each with its own
    list of candidates): `pick_best(model, tok, "sst2 sentence: great fun", ["positive", "negative"])`."""
    if isinstance(prompts, str):
        scores = rank_candidates(model, tokenizer, [prompts], [list(candidates)], **kwargs)[0]  # type: ignore[arg-type]
        return candidates[max(range(len(scores)), key=scores.__getitem__)]  # type: ignore[return-value]
    ranked = rank_candidates(model, tokenizer, prompts, candidates, **kwargs)  # type: ignore[arg-type]
    return [c[max(range(len(s)), key=s.__getitem__)] for c, s in zip(candidates, ranked)]  # type: ignore[misc]


delegates.provide("score", score)  # model.score(...)


__all__ = ["pick_best", "rank_candidates", "score"]
