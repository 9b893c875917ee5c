"""Entity F1 over tag sequences, as seqeval computes it by default (CoNLL's conlleval): entities are
(type, first, last) chunks, a predicted one counts only with the same type and the same boundaries, and
precision / recall / F1 are micro-averaged over every sentence.

Chunks follow seqeval's default (non-strict) mode: BIO and BIOES tags, an I- after O or after another
type starts a new entity, a B- always does.
"""

from __future__ import annotations

from collections.abc import Sequence

from t2t.metrics.base import check_pairs

Entity = tuple[str, int, int]


def _split(tag: str) -> tuple[str, str]:
    """('B', 'PER') from 'B-PER'; 'O' -> ('O', '_'). seqeval reads the first character as the prefix."""
    return tag[:1], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _ends(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev not in ("O", ".") and prev_type != kind


def _starts(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != kind


def entities(tags: Sequence[str]) -> set[Entity]:
    """The (type, first index, last index) chunks of one tag sequence."""
    found: set[Entity] = set()
    prev, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, kind = _split(str(tag))
        if _ends(prev, prefix, prev_type, kind):
            found.add((prev_type, begin, i - 1))
        if _starts(prev, prefix, prev_type, kind):
            begin = i
        prev, prev_type = prefix, kind
    return found


def _tags(value: str | Sequence[str]) -> list[str]:
    """A generated answer is text: its tags are the whitespace-separated words."""
    return value.split() if isinstance(value, str) else [str(t) for t in value]


def entity_f1(predictions: Sequence, references: Sequence) -> dict[str, float]:
    """Micro entity precision / recall / F1 x 100. A prediction of another length than its reference is
    scored as it is (entities are compared by position), not refused, since generated tag strings can
    be too short or too long."""
    check_pairs(predictions, references)
    predicted = [entities(_tags(p)) for p in predictions]
    gold = [entities(_tags(r)) for r in references]
    correct = sum(len(p & g) for p, g in zip(predicted, gold))
    n_pred, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"entity_f1": 100.0 * f1, "entity_precision": 100.0 * precision, "entity_recall": 100.0 * recall}
