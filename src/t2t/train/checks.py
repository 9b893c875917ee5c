"""Checks the Trainer makes before the first step, where the config alone cannot decide.

TrainConfig checks types and ranges when it is built; what needs the task registry (after
`data.tasks_yaml` is read) or the model (its architecture) is checked here, so a misspelt evaluation
task, a metric no task produces or scheduled sampling on a decoder-only model fails at once instead
of at the first evaluation, hours into a run. Each error names the key and the closest valid value.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from t2t.configbase import closest
from t2t.errors import ConfigError, DataError


def resolve_tasks(key: str, items: Sequence[Any]) -> list[Any]:
    """Task objects for `items` (names, Task or Mixture objects, data paths; a mixture gives each of
    its tasks); an unknown name is a ConfigError naming `key` and the closest registered name."""
    from t2t.data import Mixture, Task, list_mixtures, list_tasks
    from t2t.data.registry import resolve
    from t2t.evaluate import resolve_tasks as check_tasks

    found: list[Any] = []
    for item in items:
        try:
            resolved = resolve(item)
        except DataError:
            known = [*list_tasks(), *list_mixtures()]
            raise ConfigError(
                f"{key}: no task or mixture named {item!r}{closest(str(item), known)}; registered: "
                f"{', '.join(known) or 'none (declare tasks in data.tasks_yaml)'}"
            ) from None
        found.extend(resolved.tasks if isinstance(resolved, Mixture) else [resolved])
    if not found:
        return []
    try:
        check_tasks(found)  # each task once, every metric known
    except (ConfigError, DataError) as err:
        raise ConfigError(f"{key}: {err}") from None
    assert all(isinstance(t, Task) for t in found)
    return found


def source_tasks(key: str, name: str) -> list[Any]:
    """The tasks of the training source (a registered task / mixture or an existing file)."""
    from t2t.data import Mixture
    from t2t.data.registry import resolve

    try:
        resolved = resolve(name)
    except DataError as err:
        raise ConfigError(f"{key}: {err}") from None
    return list(resolved.tasks) if isinstance(resolved, Mixture) else [resolved]


def check_splits(key: str, tasks: Sequence[Any], split: str, why: str = "") -> None:
    """Each task has `split` (a task's splits are the files it was declared with)."""
    for task in tasks:
        if split not in task.splits:
            raise ConfigError(
                f"{key}: task {task.name!r} has no {split!r} split{closest(split, task.splits)}{why}; "
                f"it has {', '.join(task.splits)}"
            )


@functools.cache
def metric_keys(name: str) -> tuple[str, ...]:
    """The keys a metric reports (rouge: rouge1, rouge2, rougeL), found by scoring two toy answers
    against themselves; a metric that cannot score them reports under its own name."""
    from t2t.metrics import compute

    try:
        return tuple(compute(name, ["0", "1"], ["0", "1"]))
    except Exception:  # a metric made for other inputs: fall back to its name
        return (name,)


def produced_metrics(tasks: Sequence[Any], has_loss: bool) -> list[str]:
    """Every value an evaluation computes: TASK/KEY for each task metric, eval_loss, and `mean`."""
    names = [f"{task.name}/{key}" for task in tasks for metric in task.metrics for key in metric_keys(metric)]
    if tasks:
        names.append("mean")
    if has_loss:
        names.append("eval_loss")
    return names


def check_metric(metric: str, tasks: Sequence[Any], has_loss: bool, has_eval_fn: bool) -> None:
    """`eval.metric` must be something the evaluation computes. With an `eval_fn` of your own its
    keys are known only when it runs, so a name outside the tasks' and the loss is left to then."""
    if has_eval_fn and metric != "mean":
        return
    produced = produced_metrics(tasks, has_loss)
    if metric == "mean" and not tasks:
        if has_eval_fn:
            return
        raise ConfigError(
            "eval.metric='mean' (the mean of each task's first metric) needs eval.tasks; name the "
            "validation tasks, or set eval.metric: eval_loss with eval.loss: true"
        )
    if metric not in produced:
        hint = " (set eval.loss: true to compute it)" if metric == "eval_loss" else closest(metric, produced)
        raise ConfigError(
            f"eval.metric={metric!r} is not computed by this evaluation{hint}; it computes "
            f"{', '.join(produced) or 'nothing (set eval.tasks or eval.loss)'}"
        )


def check_scheduled_sampling(schedule: str, model: Any) -> None:
    """Scheduled sampling replaces decoder inputs: only an encoder-decoder has them."""
    if schedule == "none":
        return
    arch = getattr(getattr(model, "config", None), "arch", None)
    if arch != "encoder-decoder":
        raise ConfigError(
            f"scheduled_sampling.schedule={schedule!r} needs an encoder-decoder model (it replaces the "
            f"decoder's inputs, the two-pass decoder); this model is {type(model).__name__} "
            f"(arch {arch!r}); set scheduled_sampling.schedule: none"
        )
