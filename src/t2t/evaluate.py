"""Evaluate a model on tasks: generate an answer for each example of a split, postprocess predictions
and targets with the task, score them with each of the task's metrics, and report JSON + markdown.

    report = evaluate(model, tokenizer, ["sentiment", "translate"], split="test", limit=200)
    print(report.to_markdown())
    report.save("runs/eval")           # eval.json + eval.md, each written atomically

Generation goes through t2t.generation's Pipeline, which batches prompts of similar length; the
tasks come from the t2t.data registry (a name, a mixture name for each of its tasks, a data path or a
Task). See docs/evaluation.md.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from t2t.errors import DataError
from t2t.metrics import compute, get_metric
from t2t.utils.io import atomic_write_text

KEEP_EXAMPLES = 5  # examples per task kept in the report, to see what the model answers
CORRELATIONS = ("pearson", "spearman", "matthews")  # in [-1, 1]; everything else is a percentage


@dataclass
class EvalReport:
    """Scores per task (`scores[task][metric]`), a few examples per task, and how they were made."""

    scores: dict[str, dict[str, float]]
    examples: dict[str, list[dict[str, Any]]]
    num_examples: dict[str, int] = field(default_factory=dict)
    truncated: dict[str, int] = field(default_factory=dict)  # prompts cut to fit the model
    seconds: dict[str, float] = field(default_factory=dict)
    split: str = "test"
    settings: dict[str, Any] = field(default_factory=dict)
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "split": self.split,
            "settings": dict(self.settings),
            "scores": {task: dict(scores) for task, scores in self.scores.items()},
            "num_examples": dict(self.num_examples),
            "truncated": dict(self.truncated),
            "seconds": {task: round(s, 3) for task, s in self.seconds.items()},
            "examples": {task: list(rows) for task, rows in self.examples.items()},
        }

    def to_markdown(self) -> str:
        """A table of every task's scores, then a few examples per task."""
        lines = [f"# Evaluation on the {self.split} split", ""]
        if self.model:
            lines += [f"Model: `{self.model}`", ""]
        lines += ["| task | metric | score | examples |", "| --- | --- | ---: | ---: |"]
        for task, scores in self.scores.items():
            for name, value in scores.items():
                lines.append(
                    f"| {task} | {name} | {_format(name, value)} | {self.num_examples.get(task, '')} |"
                )
        if self.settings:
            lines += ["", "Settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items()) + "."]
        for task, rows in self.examples.items():
            if rows:
                lines += ["", f"## {task}: first {len(rows)} examples", ""]
                lines += ["| inputs | target | prediction |", "| --- | --- | --- |"]
                lines += [
                    f"| {_cell(r['inputs'])} | {_cell(r['target'])} | {_cell(r['prediction'])} |"
                    for r in rows
                ]
        return "\n".join(lines) + "\n"

    def save(self, directory: str | Path) -> Path:
        """Write eval.json and eval.md into directory (created if needed); each file appears whole."""
        directory = Path(directory)
        atomic_write_text(
            directory / "eval.json", json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        )
        atomic_write_text(directory / "eval.md", self.to_markdown())
        return directory


def _format(name: str, value: float) -> str:
    return f"{value:.4f}" if name in CORRELATIONS else f"{value:.2f}"


def _cell(value: Any, width: int = 80) -> str:
    """Text fit for one markdown table cell: one line, pipes escaped, long text cut."""
    text = " ".join(str(value).split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("|", "\\|") or " "


def resolve_tasks(tasks: Sequence[Any]) -> list[Any]:
    """Task objects from tasks, registered task or mixture names (a mixture gives each of its tasks) or
    data paths; an unknown name is a DataError naming the closest registered one."""
    from t2t.data import Mixture, Task
    from t2t.data.registry import resolve

    if isinstance(tasks, (str, Task)):
        tasks = [tasks]
    found: list[Task] = []
    for item in tasks:
        resolved = resolve(item)
        for task in resolved.tasks if isinstance(resolved, Mixture) else [resolved]:
            if task.name in {t.name for t in found}:
                raise DataError(f"task {task.name!r} is named twice; evaluate each task once")
            found.append(task)
    if not found:
        raise DataError("no tasks to evaluate; name at least one")
    for task in found:
        for name in task.metrics:
            get_metric(name)  # an unknown metric fails before any generation
    return found


def _references(task: Any, example: dict[str, Any]) -> Any:
    """The postprocessed target, or every acceptable answer when the example lists them."""
    answers = example.get("answers")
    if isinstance(answers, (list, tuple)) and answers:
        return [task.postprocess(str(a)) for a in answers]
    return task.postprocess(example["targets"])


def _generate(pipe: Any, prompts: list[str], labels: list[str], bar: Any) -> tuple[list[str], int]:
    """The pipeline's answers, and how many prompts it cut: one warning per task, not one per prompt."""
    from t2t.generation.text import TruncationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncationWarning)
        answers = pipe(prompts, labels=labels, progress=bar.update)
    cut = [w for w in caught if issubclass(w.category, TruncationWarning)]
    for w in caught:
        if not issubclass(w.category, TruncationWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if cut:
        warnings.warn(
            f"{len(cut)} of {len(prompts)} prompts were longer than the model takes and were cut, e.g. {cut[0].message}",
            TruncationWarning,
            stacklevel=3,
        )
    return answers, len(cut)


def _precision(model: Any) -> dict[str, str]:
    """The dtype the model computes in, when not float32, and its int8 quantisation, if any: the scores
    of a reduced-precision model say so."""
    from t2t.model.quantize import quantization_of

    found = {}
    dtype = getattr(model, "dtype", None)
    if isinstance(dtype, torch.dtype) and dtype != torch.float32:
        found["dtype"] = str(dtype).removeprefix("torch.")
    mode = quantization_of(model) if isinstance(model, torch.nn.Module) else None
    if mode is not None:
        found["quantize"] = mode
    return found


def _cap(limit: int | None) -> int | None:
    """islice takes at most sys.maxsize; a larger limit means every example just the same."""
    return None if limit is None else min(limit, sys.maxsize)


def evaluate(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[Any],
    *,
    split: str = "test",
    batch_size: int = 32,
    max_new_tokens: int = 64,
    num_beams: int = 1,
    limit: int | None = None,
    progress: bool = True,
) -> EvalReport:
    """Score `model` on the first `limit` examples (all when None) of each task's `split`."""
    from tqdm.auto import tqdm

    from t2t.generation import Pipeline

    if limit is not None and limit < 1:
        raise DataError(f"limit={limit} should be at least 1 (or None for every example)")
    resolved = resolve_tasks(tasks)
    pipe = Pipeline(
        model, tokenizer, batch_size=batch_size, max_new_tokens=max_new_tokens, num_beams=num_beams
    )
    report = EvalReport(
        scores={},
        examples={},
        split=split,
        settings={
            "batch_size": batch_size,
            "max_new_tokens": max_new_tokens,
            "num_beams": num_beams,
            "limit": limit,
            **_precision(model),
        },
    )
    for task in resolved:
        start = time.perf_counter()
        examples = list(itertools.islice(task.examples(split), _cap(limit)))
        if not examples:
            raise DataError(f"task {task.name!r}: the {split} split has no examples; check its data")
        labels = [f"task {task.name!r} {split} example {i + 1}" for i in range(len(examples))]
        with tqdm(total=len(examples), desc=f"eval {task.name}", unit="ex", disable=not progress) as bar:
            answers, report.truncated[task.name] = _generate(
                pipe, [e["inputs"] for e in examples], labels, bar
            )
        predictions = [task.postprocess(a) for a in answers]
        references = [_references(task, e) for e in examples]
        scores: dict[str, float] = {}
        for name in task.metrics:
            scores.update(compute(name, predictions, references))
        report.scores[task.name] = scores
        report.num_examples[task.name] = len(examples)
        report.examples[task.name] = [
            {"inputs": e["inputs"], "target": e["targets"], "prediction": a}
            for e, a in zip(examples[:KEEP_EXAMPLES], answers)
        ]
        report.seconds[task.name] = time.perf_counter() - start
    return report


__all__ = ["EvalReport", "evaluate", "resolve_tasks"]
