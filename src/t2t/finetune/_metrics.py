"""Private stand-in for `t2t.metrics` (owned by the EVAL engineer, not landed yet): the same
`compute(name, predictions, references) -> dict[str, float]` contract and scales (percentages 0-100,
correlations in [-1, 1]), for the metrics the fine-tuning recipes need. `t2t.finetune.scoring` is the
only importer; when `t2t.metrics` lands it imports from there and this file goes.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from t2t.errors import ConfigError, DataError


def _check(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise DataError(f"{len(predictions)} predictions but {len(references)} references; pass one each")
    if not references:
        raise DataError("no examples to score; the evaluation split is empty")


def _options(reference: object) -> list:
    return list(reference) if isinstance(reference, (list, tuple)) else [reference]


def accuracy(predictions: Sequence, references: Sequence) -> dict[str, float]:
    _check(predictions, references)
    hits = sum(p in _options(r) for p, r in zip(predictions, references))
    return {"accuracy": 100 * hits / len(references)}


def matthews(predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Matthews correlation of two binary labelings (CoLA; the positive class is 1 or "1"); 0 when a
    row or column of the confusion matrix is empty, as scikit-learn returns."""
    _check(predictions, references)
    pred = [str(p) == "1" for p in predictions]
    gold = [str(r) == "1" for r in references]
    tp = sum(p and g for p, g in zip(pred, gold))
    tn = sum(not p and not g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(not p and g for p, g in zip(pred, gold))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {"matthews": (tp * tn - fp * fn) / denominator if denominator else 0.0}


def _pearson(x: Sequence[float], y: Sequence[float]) -> float:
    n = len(y)
    mx, my = sum(x) / n, sum(y) / n
    dx, dy = [a - mx for a in x], [b - my for b in y]
    denominator = math.sqrt(sum(a * a for a in dx) * sum(b * b for b in dy))
    return sum(a * b for a, b in zip(dx, dy)) / denominator if denominator else 0.0


def pearson(predictions: Sequence[float], references: Sequence[float]) -> dict[str, float]:
    _check(predictions, references)
    return {"pearson": _pearson([float(p) for p in predictions], [float(r) for r in references])}


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks with ties given their average rank (as scipy.stats.rankdata)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(predictions: Sequence[float], references: Sequence[float]) -> dict[str, float]:
    _check(predictions, references)
    x, y = _ranks([float(p) for p in predictions]), _ranks([float(r) for r in references])
    return {"spearman": _pearson(x, y)}


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    _check(predictions, references)
    hits = sum(
        any(normalize_answer(p) == normalize_answer(a) for a in _options(r))
        for p, r in zip(predictions, references)
    )
    return {"exact_match": 100 * hits / len(references)}


def _f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(predictions: Sequence[str], references: Sequence) -> dict[str, float]:
    """Token F1 against the best of the gold answers (SQuAD v1.1's evaluate script)."""
    _check(predictions, references)
    total = sum(max(_f1(p, a) for a in _options(r)) for p, r in zip(predictions, references))
    return {"token_f1": 100 * total / len(references)}


def entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, first word, last word) of each BIO chunk, as seqeval's default mode reads them (an I- after
    O or after another type starts a new chunk)."""
    chunks: set[tuple[str, int, int]] = set()
    kind, begin = None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-")
        continues = prefix == "I" and name == kind
        if kind is not None and not continues:
            chunks.add((kind, begin, i - 1))
            kind = None
        if prefix == "B" or (prefix == "I" and not continues):
            kind, begin = name, i
    return chunks


def entity_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision / recall / F1 over entity chunks of each sentence's BIO tags (CoNLL, seqeval)."""
    _check(predictions, references)
    predicted, gold = [entities(p) for p in predictions], [entities(r) for r in references]
    tp = sum(len(p & g) for p, g in zip(predicted, gold))
    n_pred, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"entity_precision": 100 * precision, "entity_recall": 100 * recall, "entity_f1": 100 * f1}


METRICS: dict[str, Callable[[Sequence, Sequence], dict[str, float]]] = {
    "accuracy": accuracy,
    "matthews": matthews,
    "pearson": pearson,
    "spearman": spearman,
    "exact_match": exact_match,
    "token_f1": token_f1,
    "entity_f1": entity_f1,
}


def compute(name: str, predictions: list, references: list) -> dict[str, float]:
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; choose one of {', '.join(METRICS)}")
    return METRICS[name](predictions, references)
