"""Answer-level metrics: accuracy, and SQuAD's exact match and token F1 (the best acceptable answer
counts)."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from t2t.metrics.base import check_pairs, options

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(c for c in str(text).lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def accuracy(predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Share of predictions equal to (one of) the reference(s), compared as they are: labels should be
    normalised by the task's postprocess, not here."""
    check_pairs(predictions, references)
    hits = sum(p in options(r) for p, r in zip(predictions, references))
    return {"accuracy": 100.0 * hits / len(references)}


def exact_match(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    check_pairs(predictions, references)
    hits = sum(
        any(normalize_answer(p) == normalize_answer(a) for a in options(r))
        for p, r in zip(predictions, references)
    )
    return {"exact_match": 100.0 * hits / len(references)}


def _f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 of two answers; two empty answers agree (SQuAD 2.0's rule for no-answer)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    """Mean over examples of the token F1 against the best acceptable answer (SQuAD's evaluate script)."""
    check_pairs(predictions, references)
    total = sum(max((_f1(p, a) for a in options(r)), default=0.0) for p, r in zip(predictions, references))
    return {"token_f1": 100.0 * total / len(references)}
