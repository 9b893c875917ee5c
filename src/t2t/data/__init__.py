"""Data: sources, tasks and mixtures, pretraining objectives, batching; see docs/data.md.

The flow: `read_records` (a file) -> `Task` (text examples with a prefix) -> `Mixture` (rates) ->
objective + tokenizer + batching in `make_stream` -> `model(**batch)`.
"""

from t2t.data import objectives
from t2t.data.mixtures import Mixture, mixing_rates
from t2t.data.registry import get_mixture, list_mixtures, load_tasks_yaml, register_mixture
from t2t.data.sources import read_records
from t2t.data.stream import BatchStream, make_stream
from t2t.data.task_table import get_task, list_tasks, register_task
from t2t.data.tasks import Task
from t2t.data.templates import (
    TEMPLATES,
    classification_task,
    qa_task,
    reasoning_task,
    summarization_task,
    translation_task,
)

__all__ = [
    "TEMPLATES",
    "BatchStream",
    "Mixture",
    "Task",
    "classification_task",
    "get_mixture",
    "get_task",
    "list_mixtures",
    "list_tasks",
    "load_tasks_yaml",
    "make_stream",
    "mixing_rates",
    "objectives",
    "qa_task",
    "read_records",
    "reasoning_task",
    "register_mixture",
    "register_task",
    "summarization_task",
    "translation_task",
]
