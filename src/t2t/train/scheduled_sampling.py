"""Scheduled sampling for encoder-decoders: the two-pass decoder of Mihaylova & Martins (2019).

Pass 1 runs the model with the gold (teacher-forced) decoder inputs and no gradient. Its predictions
(argmax, or a sample from the softmax) become candidate decoder inputs: the input at position t is
replaced by the prediction made at position t-1 with probability p(step). Pass 2 runs with the mixed
inputs and is trained against the gold labels. p follows a schedule over training (Bengio et al.
2015 define the complementary probability of keeping the gold token):

- constant:        p = max_prob
- linear:          p = min(max_prob, slope * s)
- exponential:     p = max_prob * (1 - k**s)                  (0 < k < 1)
- inverse_sigmoid: p = max_prob * (1 - k / (k + exp(s / k)))  (k >= 1)

with s = step - start_step (teacher forcing only before start_step). Padding, label-masked positions and
the first position of each packed segment are never replaced.
"""

from __future__ import annotations

import math

import torch

from t2t.model.loss import IGNORE_INDEX
from t2t.train.config import ScheduledSamplingSection


def sampling_probability(cfg: ScheduledSamplingSection, step: int) -> float:
    """Probability of feeding the model's own prediction instead of the gold token at `step`."""
    if cfg.schedule == "none" or step < cfg.start_step:
        return 0.0
    s = step - cfg.start_step
    if cfg.schedule == "constant":
        return cfg.max_prob
    if cfg.schedule == "linear":
        return min(cfg.max_prob, cfg.slope * s)
    if cfg.schedule == "exponential":
        return cfg.max_prob * (1.0 - cfg.k**s)
    # inverse sigmoid; exp overflows for s/k > ~709, where the gold share is 0 anyway
    gold = cfg.k / (cfg.k + math.exp(min(s / cfg.k, 700.0)))
    return cfg.max_prob * (1.0 - gold)


def predictions(
    logits: torch.Tensor, sample: bool, temperature: float, generator: torch.Generator
) -> torch.Tensor:
    """[B, T, V] logits -> [B, T] token ids (argmax, or one draw per position)."""
    if not sample:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]).cpu(), 1, generator=generator)
    return flat.view(logits.shape[:-1]).to(logits.device)


def mix_decoder_inputs(
    gold_inputs: torch.Tensor,
    labels: torch.Tensor,
    predicted: torch.Tensor,
    prob: float,
    generator: torch.Generator,
    segment_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int, int]:
    """Gold decoder inputs with some replaced by the previous position's prediction.

    Returns (mixed inputs, replaced count, replaceable count)."""
    candidates = torch.zeros_like(gold_inputs)
    candidates[:, 1:] = predicted[:, :-1]
    allowed = torch.zeros_like(gold_inputs, dtype=torch.bool)
    # input t is the token of label t-1 and only matters when label t is scored
    allowed[:, 1:] = (labels[:, :-1] != IGNORE_INDEX) & (labels[:, 1:] != IGNORE_INDEX)
    if segment_ids is not None:
        allowed[:, 1:] &= (segment_ids[:, 1:] == segment_ids[:, :-1]) & (segment_ids[:, 1:] != 0)
    draws = torch.rand(gold_inputs.shape, generator=generator).to(gold_inputs.device)
    replace = allowed & (draws < prob)
    mixed = torch.where(replace, candidates, gold_inputs)
    return mixed, int(replace.sum()), int(allowed.sum())
