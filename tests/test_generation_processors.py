"""Logits processors against transformers' processors of the same names, on random scores and histories;
the order they are applied in; the two length-penalty conventions."""

from __future__ import annotations

import math

import pytest
import torch
import transformers.generation.logits_process as hf

from t2t.generation import GenerationConfig
from t2t.generation.beam import length_penalty_divisor
from t2t.generation.processors import (
    MinNewTokens,
    NoRepeatNGram,
    RepetitionPenalty,
    Temperature,
    TopK,
    TopP,
    build_processors,
)


def case(seed: int, rows: int = 4, vocab: int = 50, length: int = 12):
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(0, 8, (rows, length), generator=g)  # few distinct ids: repeats happen
    scores = torch.randn(rows, vocab, generator=g) * 3
    return history, scores


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, -inf at the same places."""
    return torch.equal(torch.isinf(a), torch.isinf(b)) and torch.allclose(
        a.masked_fill(torch.isinf(a), 0), b.masked_fill(torch.isinf(b), 0), atol=0, rtol=0
    )


PAIRS = [
    (lambda: RepetitionPenalty(1.3), lambda: hf.RepetitionPenaltyLogitsProcessor(1.3)),
    (lambda: RepetitionPenalty(0.7), lambda: hf.RepetitionPenaltyLogitsProcessor(0.7)),
    (
        lambda: RepetitionPenalty(1.5, torch.tensor([0, 3, 5, 11])),
        lambda: hf.RepetitionPenaltyLogitsProcessor(1.5, prompt_ignore_length=torch.tensor([0, 3, 5, 11])),
    ),
    (lambda: NoRepeatNGram(1), lambda: hf.NoRepeatNGramLogitsProcessor(1)),
    (lambda: NoRepeatNGram(2), lambda: hf.NoRepeatNGramLogitsProcessor(2)),
    (lambda: NoRepeatNGram(3), lambda: hf.NoRepeatNGramLogitsProcessor(3)),
    (lambda: NoRepeatNGram(20), lambda: hf.NoRepeatNGramLogitsProcessor(20)),
    (
        lambda: MinNewTokens(8, 6, [1, 7]),
        lambda: hf.MinNewTokensLengthLogitsProcessor(8, 6, torch.tensor([1, 7])),
    ),
    (lambda: MinNewTokens(8, 4, [1]), lambda: hf.MinNewTokensLengthLogitsProcessor(8, 4, torch.tensor([1]))),
    (lambda: Temperature(0.7), lambda: hf.TemperatureLogitsWarper(0.7)),
    (lambda: TopK(5), lambda: hf.TopKLogitsWarper(5)),
    (lambda: TopK(1, min_tokens_to_keep=3), lambda: hf.TopKLogitsWarper(1, min_tokens_to_keep=3)),
    (lambda: TopK(500), lambda: hf.TopKLogitsWarper(500)),
    (lambda: TopP(0.9), lambda: hf.TopPLogitsWarper(0.9)),
    (lambda: TopP(0.3, min_tokens_to_keep=2), lambda: hf.TopPLogitsWarper(0.3, min_tokens_to_keep=2)),
    (lambda: TopP(1e-6), lambda: hf.TopPLogitsWarper(1e-6)),
]


@pytest.mark.parametrize("pair", range(len(PAIRS)))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_processor_matches_transformers(pair, seed):
    ours, theirs = (make() for make in PAIRS[pair])
    history, scores = case(seed)
    expected = theirs(history, scores.clone())
    got = ours(history, scores.clone())
    assert same(got, expected)


def test_processors_change_what_they_should():
    history = torch.tensor([[4, 5, 4, 5]])
    scores = torch.tensor([[1.0, 2.0, -1.0, 0.5, 2.0, -2.0, 3.0]])
    penalised = RepetitionPenalty(2.0)(history, scores)
    assert penalised[0, 4] == 1.0 and penalised[0, 5] == -4.0 and penalised[0, 6] == 3.0
    banned = NoRepeatNGram(2)(history, scores)  # the suffix (5,) was followed by 4 before
    assert banned[0, 4] == -math.inf and torch.isfinite(banned[0, :4]).all()
    assert TopK(2)(history, scores).isfinite().sum() == 3  # 3.0 and both 2.0s: a tie with the k-th stays


def test_build_processors_order_and_selection():
    cfg = GenerationConfig(
        repetition_penalty=1.2,
        no_repeat_ngram_size=3,
        min_new_tokens=2,
        do_sample=True,
        temperature=0.5,
        top_k=10,
        top_p=0.8,
        eos_token_id=1,
    )
    kinds = [type(p) for p in build_processors(cfg, prompt_length=1)]
    assert kinds == [RepetitionPenalty, NoRepeatNGram, MinNewTokens, Temperature, TopK, TopP]
    assert build_processors(GenerationConfig(eos_token_id=1), prompt_length=1) == []  # plain greedy: none
    warpers_ignored = GenerationConfig(temperature=0.5, top_k=10, eos_token_id=1)  # do_sample=False
    assert build_processors(warpers_ignored, prompt_length=1) == []


def test_beam_sampling_keeps_a_token_besides_eos():
    cfg = GenerationConfig(do_sample=True, num_beams=3, top_k=1, top_p=0.1, eos_token_id=[1, 2])
    top_k, top_p = build_processors(cfg, prompt_length=1)
    assert top_k.top_k == 3 and top_p.min_tokens_to_keep == 3


@pytest.mark.parametrize("length", [1, 4, 17])
@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0, -0.5])
def test_length_penalty_conventions(length, alpha):
    assert length_penalty_divisor(length, alpha, "hf") == pytest.approx(length**alpha)
    assert length_penalty_divisor(length, alpha, "gnmt") == pytest.approx(((5 + length) / 6) ** alpha)
    assert length_penalty_divisor(1, alpha, "gnmt") == pytest.approx(1.0)  # GNMT's is 1 for one token
