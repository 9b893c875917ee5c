"""N-gram overlap metrics through the libraries made for them: BLEU and chrF (sacrebleu, corpus-level,
default settings: 13a tokenisation, chrF with character 6-grams and beta 2) and ROUGE-1/2/L (rouge-score,
F-measure with the Porter stemmer, averaged over examples; the best reference counts)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from t2t.metrics.base import check_pairs, options

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _streams(references: Sequence) -> list[list[str | None]]:
    """sacrebleu's layout: one stream per reference position; examples with fewer references get None."""
    refs = [[str(a) for a in options(r)] for r in references]
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


def _texts(predictions: Sequence) -> list[str]:
    return [str(p) for p in predictions]


def bleu(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    from sacrebleu.metrics import BLEU

    check_pairs(predictions, references)
    return {"bleu": float(BLEU().corpus_score(_texts(predictions), _streams(references)).score)}


def chrf(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    from sacrebleu.metrics import CHRF

    check_pairs(predictions, references)
    return {"chrf": float(CHRF().corpus_score(_texts(predictions), _streams(references)).score)}


@functools.cache
def _rouge_scorer() -> Any:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure x 100. rouge-score's tokeniser keeps only a-z and 0-9 (after lower
    casing), so text in other scripts scores 0: use chrF for it."""
    check_pairs(predictions, references)
    scorer = _rouge_scorer()
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(_texts(predictions), references):
        golds = [str(a) for a in options(reference)]
        scores = (
            scorer.score(golds[0], prediction) if len(golds) == 1 else scorer.score_multi(golds, prediction)
        )
        for name in ROUGE_TYPES:
            totals[name] += scores[name].fmeasure
    return {name: 100.0 * total / len(references) for name, total in totals.items()}
