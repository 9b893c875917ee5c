"""The table of registered tasks by name. Mixtures name their tasks and the registry declares them, so
both read this table (and neither imports the other for it)."""

from __future__ import annotations

from typing import Any

from t2t.configbase import closest
from t2t.data.tasks import Task
from t2t.errors import DataError

_TASKS: dict[str, Task] = {}


def _register(table: dict[str, Any], kind: str, item: Any, overwrite: bool) -> Any:
    if item.name in table and table[item.name] is not item and not overwrite:
        raise DataError(
            f"a {kind} named {item.name!r} is already registered; pick another name or pass overwrite=True"
        )
    table[item.name] = item
    return item


def _get(table: dict[str, Any], kind: str, name: str) -> Any:
    if name not in table:
        known = ", ".join(sorted(table)) or "none yet"
        raise DataError(f"no {kind} named {name!r}{closest(name, table)}; registered: {known}")
    return table[name]


def register_task(task: Task, *, overwrite: bool = False) -> Task:
    return _register(_TASKS, "task", task, overwrite)


def get_task(name: str) -> Task:
    """The registered task; a miss is a DataError naming the closest registered name."""
    return _get(_TASKS, "task", name)


def list_tasks() -> list[str]:
    return sorted(_TASKS)


__all__ = ["get_task", "list_tasks", "register_task"]
