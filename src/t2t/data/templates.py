"""Ready-made tasks for the common text-to-text formats: each builds a Task with T5's prefix, a
preprocess that reads the named fields, and the metrics that suit the task.

| template | inputs | metrics |
| --- | --- | --- |
| translation | `translate English to German: {source}` | bleu, chrf |
| classification | `classify sentiment: {text}` -> label | accuracy |
| qa (closed book) | `question: {question}` | exact_match, token_f1 |
| qa (with context) | `question: {question} context: {context}` | exact_match, token_f1 |
| summarization | `summarize: {document}` | rouge |
| reasoning | `reasoning: {problem}` | exact_match |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from t2t.data.tasks import Source, Task

Record = dict[str, Any]


def _fields(inputs: str, targets: str, labels: Mapping[Any, str] | None = None) -> Callable[[Record], Record]:
    """A preprocess reading `inputs` / `targets` fields (a label id mapped to its name when given)."""

    def preprocess(record: Record) -> Record:
        target = record[targets]
        if labels is not None:
            target = labels.get(target, labels.get(str(target), target))
        elif isinstance(target, int | float) and not isinstance(target, bool):
            target = str(target)
        out = {k: v for k, v in record.items() if k not in (inputs, targets)}
        out.update(inputs=record[inputs], targets=target)
        return out

    return preprocess


def _prefixed(
    name: str, source: Source, prefix: str, fields: tuple[str, str], metrics: Sequence[str], **options: Any
) -> Task:
    return Task(name, source, preprocess=_fields(*fields), prefix=prefix, metrics=metrics, **options)


def translation_task(
    name: str,
    source: Source,
    *,
    source_language: str = "English",
    target_language: str = "German",
    source_field: str = "inputs",
    target_field: str = "targets",
    metrics: Sequence[str] = ("bleu", "chrf"),
    **options: Any,
) -> Task:
    """`translate English to German: {source}` -> `{target}`."""
    prefix = f"translate {source_language} to {target_language}: "
    return _prefixed(name, source, prefix, (source_field, target_field), metrics, **options)


def classification_task(
    name: str,
    source: Source,
    *,
    label: str = "sentiment",
    text_field: str = "inputs",
    label_field: str = "targets",
    label_names: Sequence[str] | Mapping[Any, str] | None = None,
    metrics: Sequence[str] = ("accuracy",),
    **options: Any,
) -> Task:
    """`classify {label}: {text}` -> the label's name. label_names maps label ids (0, 1, ... for a list)
    to the words the model writes, e.g. ["negative", "positive"]."""
    names = dict(enumerate(label_names)) if isinstance(label_names, Sequence) else label_names
    return Task(
        name,
        source,
        preprocess=_fields(text_field, label_field, names),
        prefix=f"classify {label}: ",
        metrics=metrics,
        **options,
    )


def qa_task(
    name: str,
    source: Source,
    *,
    question_field: str = "question",
    context_field: str | None = "context",
    answer_field: str = "answers",
    metrics: Sequence[str] = ("exact_match", "token_f1"),
    **options: Any,
) -> Task:
    """`question: {q} context: {c}` (context_field=None: closed book, `question: {q}`) -> the first
    answer; every acceptable answer passes through as "answers" for the metrics."""

    def preprocess(record: Record) -> Record:
        answers = record[answer_field]
        answers = [answers] if isinstance(answers, str) else list(answers)
        text = f"question: {record[question_field]}"
        if context_field is not None:
            text += f" context: {record[context_field]}"
        if not answers:
            return {"inputs": text, "targets": ""}  # the empty target is reported with file:line
        return {"inputs": text, "targets": str(answers[0]), "answers": [str(a) for a in answers]}

    return Task(name, source, preprocess=preprocess, metrics=metrics, **options)


def summarization_task(
    name: str,
    source: Source,
    *,
    document_field: str = "inputs",
    summary_field: str = "targets",
    metrics: Sequence[str] = ("rouge",),
    **options: Any,
) -> Task:
    """`summarize: {document}` -> `{summary}`."""
    return _prefixed(name, source, "summarize: ", (document_field, summary_field), metrics, **options)


def reasoning_task(
    name: str,
    source: Source,
    *,
    problem_field: str = "inputs",
    answer_field: str = "targets",
    metrics: Sequence[str] = ("exact_match",),
    **options: Any,
) -> Task:
    """`reasoning: {problem}` -> `{answer}`."""
    return _prefixed(name, source, "reasoning: ", (problem_field, answer_field), metrics, **options)


TEMPLATES: dict[str, Callable[..., Task]] = {
    "translation": translation_task,
    "classification": classification_task,
    "qa": qa_task,
    "summarization": summarization_task,
    "reasoning": reasoning_task,
}
