"""Span question answering as BERT's reference run_squad.py does it.

- `read_squad`: SQuAD v1.1 JSON (data > paragraphs > context, qas > question, answers with text and
  answer_start); an answer_start that does not point at its text is an error naming the entry.
- `squad_features`: [CLS] question [SEP] context window [SEP] with token types 0 then 1. A context longer
  than the window is cut into overlapping windows whose starts are `doc_stride` tokens apart; an answer
  outside a window gets start = end = 0 ([CLS]), as BERT trains it.
- `best_answers`: per question, the best span over all its windows (start <= end, at most
  `max_answer_length` tokens, the start token in the window where it has the most context), mapped back
  to characters of the original context through the tokenizer's offsets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from t2t.errors import DataError
from t2t.finetune.readers import check_file
from t2t.tokenizer import Tokenizer


@dataclass(frozen=True)
class SquadExample:
    id: str
    question: str
    context: str
    answers: list[tuple[str, int]]  # (text, character start)
    where: str = ""


@dataclass
class SquadFeature:
    """One window of one question: model inputs plus what is needed to map tokens back to characters."""

    example: int  # index of the SquadExample
    input_ids: list[int]
    token_type_ids: list[int]
    start_position: int
    end_position: int
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # token -> context chars
    max_context: dict[int, bool] = field(default_factory=dict)

    def model_inputs(self) -> dict:
        return {
            "input_ids": self.input_ids,
            "token_type_ids": self.token_type_ids,
            "start_positions": self.start_position,
            "end_positions": self.end_position,
        }


def read_squad(path: str | Path) -> list[SquadExample]:
    path = check_file(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise DataError(
            f"{path}: not a SQuAD JSON file ({err}); see docs/finetuning.md for the layout"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(
            f'{path}: no "data" list at the top; SQuAD files look like {{"data": [{{"paragraphs": ...}}]}}'
        )
    examples = []
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            where = f"{path}: data[{a}].paragraphs[{p}]"
            context = paragraph.get("context")
            if not isinstance(context, str) or not context.strip():
                raise DataError(f'{where}: "context" should be a non-empty string')
            for q, qa in enumerate(paragraph.get("qas", [])):
                examples.append(_example(qa, context, f"{where}.qas[{q}]"))
    if not examples:
        raise DataError(f"{path}: no questions found")
    return examples


def _example(qa: dict, context: str, where: str) -> SquadExample:
    question = qa.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f'{where}: "question" should be a non-empty string')
    answers = []
    for k, answer in enumerate(qa.get("answers", [])):
        text, start = answer.get("text"), answer.get("answer_start")
        if not isinstance(text, str) or not isinstance(start, int):
            raise DataError(f'{where}.answers[{k}]: needs "text" (a string) and "answer_start" (an integer)')
        if context[start : start + len(text)] != text:
            raise DataError(
                f"{where}.answers[{k}]: answer_start={start} does not point at {text!r} in the context "
                f"(found {context[start : start + len(text)]!r}); fix answer_start"
            )
        answers.append((text, start))
    return SquadExample(str(qa.get("id", where)), question, context, answers, where)


def squad_features(
    tokenizer: Tokenizer,
    examples: Sequence[SquadExample],
    *,
    max_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
) -> list[SquadFeature]:
    """Windows over each context (BERT's defaults: 384 tokens, stride 128, questions up to 64 tokens)."""
    if tokenizer.cls_id is None or tokenizer.sep_id is None:
        raise DataError("span QA needs a BERT (WordPiece) tokenizer with [CLS] and [SEP]")
    features = []
    for index, example in enumerate(examples):
        query = tokenizer.encode(example.question, add_special_tokens=False)[:max_query_length]
        doc = tokenizer.backend.encode(example.context, add_special_tokens=False)
        doc_ids, doc_offsets = doc.ids, doc.offsets
        room = max_length - len(query) - 3
        if room < 1:
            raise DataError(f"{example.where}: max_length={max_length} leaves no room for the context")
        answer = _token_span(doc_offsets, *example.answers[0]) if example.answers else None
        windows = doc_windows(len(doc_ids), room, doc_stride)
        for w, (begin, length) in enumerate(windows):
            ids = [
                tokenizer.cls_id,
                *query,
                tokenizer.sep_id,
                *doc_ids[begin : begin + length],
                tokenizer.sep_id,
            ]
            shift = len(query) + 2 - begin  # window token t sits at position t + shift
            start = end = 0
            if answer is not None and begin <= answer[0] and answer[1] < begin + length:
                start, end = answer[0] + shift, answer[1] + shift
            features.append(
                SquadFeature(
                    example=index,
                    input_ids=ids,
                    token_type_ids=[0] * (len(query) + 2) + [1] * (length + 1),
                    start_position=start,
                    end_position=end,
                    offsets={t + shift: doc_offsets[t] for t in range(begin, begin + length)},
                    max_context={
                        t + shift: is_max_context(windows, w, t) for t in range(begin, begin + length)
                    },
                )
            )
    return features


def doc_windows(n_tokens: int, room: int, stride: int) -> list[tuple[int, int]]:
    """(start, length) of each window: starts `stride` apart until the last token is covered."""
    windows, start = [], 0
    while True:
        length = min(room, n_tokens - start)
        windows.append((start, length))
        if start + length >= n_tokens:
            return windows
        start += min(length, stride)


def is_max_context(windows: list[tuple[int, int]], current: int, token: int) -> bool:
    """BERT's rule: a token belongs to the window where min(left context, right context) + 0.01 * length
    is the largest."""
    best, best_score = None, None
    for w, (start, length) in enumerate(windows):
        if not start <= token < start + length:
            continue
        score = min(token - start, start + length - 1 - token) + 0.01 * length
        if best_score is None or score > best_score:
            best, best_score = w, score
    return best == current


def _token_span(offsets: Sequence[tuple[int, int]], text: str, start: int) -> tuple[int, int] | None:
    """The first and last context tokens that overlap the answer's characters."""
    end = start + len(text)
    inside = [t for t, (a, b) in enumerate(offsets) if a < end and b > start]
    return (inside[0], inside[-1]) if inside else None


def best_answers(
    examples: Sequence[SquadExample],
    features: Sequence[SquadFeature],
    start_logits: Sequence[torch.Tensor],
    end_logits: Sequence[torch.Tensor],
    *,
    max_answer_length: int = 30,
    n_best: int = 20,
) -> list[str]:
    """The predicted answer text of each example: the best start + end logit over its windows among the
    n_best starts and ends of each window."""
    best: dict[int, tuple[float, str]] = {}
    for feature, starts, ends in zip(features, start_logits, end_logits):
        starts, ends = starts.float(), ends.float()
        context = examples[feature.example].context
        top_starts = starts.topk(min(n_best, len(starts))).indices.tolist()
        top_ends = ends.topk(min(n_best, len(ends))).indices.tolist()
        for s in top_starts:
            if s not in feature.offsets or not feature.max_context.get(s, False):
                continue
            for e in top_ends:
                if e not in feature.offsets or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(starts[s] + ends[e])
                if feature.example not in best or score > best[feature.example][0]:
                    best[feature.example] = (score, context[feature.offsets[s][0] : feature.offsets[e][1]])
    return [best.get(i, (0.0, ""))[1] for i in range(len(examples))]
