"""The quickstart's built-in tasks (data/builtin/quickstart, rebuilt by scripts/build_quickstart_data.py).

Their prefixes mirror the project's examples: `translate English to German: ...`, `classify sentiment:
...`, `question: ... context: ...`, `summarize: ...`, `reasoning: ...`. Each is registered under a
`quickstart_` name so `t2t eval --tasks quickstart_reasoning` finds it.
"""

from __future__ import annotations

from pathlib import Path

from t2t.data import (
    Mixture,
    Task,
    classification_task,
    get_mixture,
    get_task,
    list_mixtures,
    list_tasks,
    qa_task,
    reasoning_task,
    register_mixture,
    register_task,
    summarization_task,
    translation_task,
)
from t2t.utils.resources import builtin_dir

DATA_DIR = builtin_dir() / "quickstart"
QUICKSTART_TASKS = (
    "quickstart_translate",
    "quickstart_sentiment",
    "quickstart_question",
    "quickstart_summarize",
    "quickstart_reasoning",
)
QUICKSTART_MIXTURE = "quickstart"
# Tasks whose test items hold entities never seen in training (they must be read from the input, not
# remembered): the quickstart aims at >= 90% exact match there.
RULE_TASKS = ("quickstart_translate", "quickstart_question", "quickstart_summarize", "quickstart_reasoning")
RULE_TARGET = 90.0


def _build(data_dir: Path) -> list[Task]:
    def folder(name: str) -> Path:
        return data_dir / name

    return [
        translation_task("quickstart_translate", folder("translate"), metrics=("exact_match", "chrf")),
        classification_task("quickstart_sentiment", folder("sentiment"), label="sentiment"),
        qa_task("quickstart_question", folder("question")),
        summarization_task("quickstart_summarize", folder("summarize"), metrics=("exact_match", "rouge")),
        reasoning_task("quickstart_reasoning", folder("reasoning")),
    ]


def register_quickstart_tasks(data_dir: Path | None = None) -> Mixture:
    """Register the five tasks and their equal-rate mixture (once; later calls return the same one)."""
    if QUICKSTART_MIXTURE in list_mixtures():
        return get_mixture(QUICKSTART_MIXTURE)
    for task in _build(data_dir or DATA_DIR):
        if task.name not in list_tasks():
            register_task(task)
    mixture = Mixture(QUICKSTART_MIXTURE, [get_task(n) for n in QUICKSTART_TASKS], rate="equal")
    register_mixture(mixture)
    return mixture
