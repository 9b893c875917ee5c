"""Beam search with transformers' semantics, so outputs are token-identical to its `generate`.

Per example, K = num_beams running hypotheses. Each step scores every (beam, token) continuation by its
accumulated log-probability and keeps the best 2K (or (1 + number of eos ids) x K) candidates, so that
K of them can go on even when the best ones end. Candidates that end (an eos token, or the length
limit) and are among the first K compete for the K finished slots with their score divided by the
length penalty; the others are discarded. The K best candidates that did not end are the next running
beams, and the KV cache rows follow them (`Steps.reorder`).

The search of an example stops as transformers' does (`early_stopping`):
- True: as soon as it has K finished hypotheses;
- False: when no running beam can still beat its worst finished hypothesis, estimating a running
  beam's best final score at the current length (a heuristic; the default);
- "never": like False, but with a positive length penalty the estimate uses the longest possible
  length, so the search only stops when no better hypothesis can exist (canonical beam search).

Length penalty styles (`length_penalty_style`): "hf", score / len**alpha (transformers' default,
alpha = `length_penalty` = 1.0); "gnmt", score / ((5 + len) / 6)**alpha (Wu et al. 2016; the T5
paper decodes with alpha = 0.6, beam 4). len counts the generated tokens, eos included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from t2t.generation.processors import LogitsProcessor, apply_processors
from t2t.generation.steps import Steps, widen

_NEG = -1.0e9  # "impossible" score, as transformers uses (a finite value keeps arithmetic exact)


def length_penalty_divisor(length: int, alpha: float, style: str) -> float:
    """What a finished hypothesis's summed log-probability is divided by."""
    if style == "gnmt":
        return ((5 + length) / 6) ** alpha
    return length**alpha


@dataclass
class BeamSettings:
    num_beams: int
    max_new_tokens: int
    eos_ids: Sequence[int]
    pad_id: int
    length_penalty: float = 1.0
    length_penalty_style: str = "hf"
    early_stopping: bool | str = False
    num_return_sequences: int = 1
    do_sample: bool = False


def _gather(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values [B, beams, ...] -> values[b, index[b, j], ...] for index [B, J]."""
    while index.dim() < values.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(values, index, dim=1)


def beam_search(
    steps: Steps,
    start: torch.Tensor,
    settings: BeamSettings,
    processors: Sequence[LogitsProcessor],
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """start [B*K, P] (each example's row repeated K times) -> (sequences [B*R, P + new], scores [B*R]),
    R = num_return_sequences, best first; scores are length-penalised as above."""
    s = settings
    k = s.num_beams
    device = start.device
    batch = start.shape[0] // k
    prompt_length = start.shape[1]
    max_length = prompt_length + s.max_new_tokens
    keep = max(2, 1 + len(s.eos_ids)) * k
    top_k_mask = torch.arange(keep, device=device) < k
    eos = torch.tensor(list(s.eos_ids), dtype=torch.long, device=device)

    # Token buffers [batch, beams, width] grow with the hypotheses (up to max_length), not before.
    running = widen(start.view(batch, k, prompt_length), prompt_length + 1, max_length, s.pad_id)
    finished = running.clone()
    running_scores = torch.zeros(batch, k, device=device)
    running_scores[:, 1:] = _NEG  # all beams start equal: only the first one may expand at step one
    finished_scores = torch.full((batch, k), _NEG, device=device)
    finished_lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
    is_finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
    may_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)
    offsets = (torch.arange(batch, device=device) * k)[:, None]

    length = prompt_length
    while True:
        running = widen(running, length + 1, max_length, s.pad_id)
        finished = widen(finished, length + 1, max_length, s.pad_id)
        history = running[:, :, :length].reshape(batch * k, length)
        log_probs = torch.log_softmax(steps(history), dim=-1)
        log_probs = apply_processors(processors, history, log_probs)
        vocab = log_probs.shape[-1]
        totals = (log_probs.view(batch, k, vocab) + running_scores[:, :, None]).view(batch, k * vocab)

        # The best `keep` continuations over all beams of each example.
        if s.do_sample:
            picked = torch.multinomial(torch.softmax(totals, dim=-1), keep, generator=generator)
            cand_scores = torch.gather(totals, 1, picked)
        else:
            cand_scores, picked = torch.topk(totals, keep)
        parents = picked // vocab
        candidates = _gather(running, parents)
        candidates[:, :, length] = picked % vocab
        ends = torch.isin(candidates[:, :, length], eos) | (length + 1 >= max_length)

        # Next running beams: the best K candidates that did not end.
        alive_scores = cand_scores + ends.float() * _NEG
        best_alive = torch.topk(alive_scores, k)[1]
        running = _gather(candidates, best_alive)
        running_scores = _gather(alive_scores, best_alive)
        steps.reorder((_gather(parents, best_alive) + offsets).view(-1))

        # Finished hypotheses: merge the candidates that just ended (among the first K) and keep K.
        generated = length + 1 - prompt_length
        new_scores = cand_scores / length_penalty_divisor(generated, s.length_penalty, s.length_penalty_style)
        full = torch.all(is_finished, dim=-1, keepdim=True) & (s.early_stopping is True)
        new_scores += full.float() * _NEG
        new_scores += (~may_improve).float() * _NEG
        just_ended = ends & top_k_mask[None, :]
        new_scores += (~just_ended) * _NEG
        merged_scores = torch.cat((finished_scores, new_scores), dim=1)
        best = torch.topk(merged_scores, k)[1]
        finished = _gather(torch.cat((finished, candidates), dim=1), best)
        finished_scores = _gather(merged_scores, best)
        finished_lengths = _gather(
            torch.cat((finished_lengths, torch.full_like(cand_scores, generated, dtype=torch.long)), dim=1),
            best,
        )
        is_finished = _gather(torch.cat((is_finished, just_ended), dim=1), best)

        length += 1
        may_improve = _may_improve(
            may_improve, running_scores, finished_scores, is_finished, length - prompt_length, s
        )
        if not _keep_going(may_improve, is_finished, ends, s.early_stopping):
            break

    r = s.num_return_sequences
    out_length = prompt_length + int(finished_lengths[:, :r].max())
    sequences = finished[:, :r, :out_length].reshape(batch * r, out_length)
    return sequences, finished_scores[:, :r].reshape(batch * r)


def _may_improve(
    may_improve: torch.Tensor,
    running_scores: torch.Tensor,
    finished_scores: torch.Tensor,
    is_finished: torch.Tensor,
    generated: int,
    s: BeamSettings,
) -> torch.Tensor:
    """Whether the best running beam could still beat the worst finished hypothesis, per example."""
    if s.early_stopping == "never" and s.length_penalty > 0.0:
        best_length = s.max_new_tokens
    else:
        best_length = generated
    divisor = length_penalty_divisor(best_length, s.length_penalty, s.length_penalty_style)
    best_possible = running_scores[:, :1] / divisor
    worst_finished = torch.where(is_finished, torch.min(finished_scores, dim=1, keepdim=True)[0], _NEG)
    return may_improve & torch.any(best_possible > worst_finished, dim=-1, keepdim=True)


def _keep_going(
    may_improve: torch.Tensor, is_finished: torch.Tensor, ends: torch.Tensor, early_stopping: bool | str
) -> bool:
    all_done = bool(torch.all(is_finished)) and early_stopping is True
    return bool(torch.any(may_improve)) and not all_done and not bool(torch.all(ends))


__all__ = ["BeamSettings", "beam_search", "length_penalty_divisor"]
