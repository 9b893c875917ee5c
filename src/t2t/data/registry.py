"""Task and mixture registries, and tasks declared in YAML.

```yaml
tasks:
  - name: sentiment
    template: classification       # optional: translation, classification, qa, summarization, reasoning
    source: quickstart/sentiment   # relative to this file; or {train: a.jsonl, validation: b.jsonl}
    label: sentiment               # template options (see t2t.data.templates)
  - name: corpus
    source: corpus.txt
    format: documents              # any Task option: prefix, metrics, format, skip_bad_records, splits
    fields: {inputs: sentence, targets: label}   # plain tasks: which record fields are inputs/targets
    postprocess: [first_line, lower]   # named, applied in order (see t2t.data.postprocess)
mixtures:
  - name: finetune
    tasks: [sentiment, corpus]
    rate: temperature              # proportional (default), equal, temperature
    cap: 1000
    temperature: 2.0
```
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from t2t.configbase import check_finite, closest
from t2t.data.mixtures import Mixture
from t2t.data.postprocess import named_postprocess
from t2t.data.task_table import _TASKS, _get, _register, register_task
from t2t.data.tasks import Task
from t2t.data.templates import TEMPLATES, _fields
from t2t.errors import ConfigError, DataError
from t2t.utils.resources import shipped
from t2t.utils.yamlio import load_yaml

_MIXTURES: dict[str, Mixture] = {}


def register_mixture(mixture: Mixture, *, overwrite: bool = False) -> Mixture:
    return _register(_MIXTURES, "mixture", mixture, overwrite)


def get_mixture(name: str) -> Mixture:
    return _get(_MIXTURES, "mixture", name)


def list_mixtures() -> list[str]:
    return sorted(_MIXTURES)


def resolve(source: str | Path | Task | Mixture) -> Task | Mixture:
    """A Task or Mixture object, a registered task or mixture name, or a data file / folder path."""
    if isinstance(source, Task | Mixture):
        return source
    name = str(source)
    if name in _TASKS:
        return _TASKS[name]
    if name in _MIXTURES:
        return _MIXTURES[name]
    if shipped(name).exists() or name.startswith("hf:"):
        return Task(Path(name).stem or name, shipped(name))
    known = sorted([*_TASKS, *_MIXTURES])
    raise DataError(
        f"{name!r} is neither a registered task or mixture{closest(name, known)} nor an existing file; "
        f"registered: {', '.join(known) or 'none yet'}"
    )


_TASK_OPTIONS = ("prefix", "metrics", "format", "skip_bad_records", "splits", "postprocess")


def _allowed(function: Callable[..., Any]) -> set[str]:
    params = inspect.signature(function).parameters
    return {p for p in params if p not in ("name", "source", "options")}


def _check_keys(entry: dict, allowed: set[str], where: str) -> None:
    for key in entry:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {key!r}{closest(key, allowed)}; allowed: {', '.join(sorted(allowed))}"
            )


def _source(value: Any, base: Path, where: str) -> Any:
    if isinstance(value, dict):
        return {str(k): _source(v, base, where) for k, v in value.items()}
    if not isinstance(value, str):
        raise ConfigError(f"{where}: source should be a path or a {{split: path}} mapping, got {value!r}")
    return value if value.startswith("hf:") or Path(value).is_absolute() else str(base / value)


def _task_from_yaml(entry: Any, base: Path, where: str) -> Task:
    if not isinstance(entry, dict) or "name" not in entry or "source" not in entry:
        raise ConfigError(f"{where}: a task needs at least `name:` and `source:`, got {entry!r}")
    entry = dict(entry)
    name, template = entry.pop("name"), entry.pop("template", None)
    where = f"{where} (task {name!r})"
    source = _source(entry.pop("source"), base, where)
    if "postprocess" in entry:
        entry["postprocess"] = named_postprocess(entry["postprocess"], where)
    if template is None:
        _check_keys(entry, {"fields", *_TASK_OPTIONS}, where)
        fields = entry.pop("fields", None)
        if fields is not None:
            if not isinstance(fields, dict) or set(fields) - {"inputs", "targets"}:
                raise ConfigError(
                    f"{where}: fields should map inputs/targets to record fields, got {fields!r}"
                )
            entry["preprocess"] = _fields(fields.get("inputs", "inputs"), fields.get("targets", "targets"))
        return Task(name, source, **entry)
    if template not in TEMPLATES:
        raise ConfigError(
            f"{where}: template {template!r} is not one of {', '.join(TEMPLATES)}{closest(template, TEMPLATES)}"
        )
    build = TEMPLATES[template]
    _check_keys(entry, _allowed(build) | set(_TASK_OPTIONS) - {"prefix"}, where)
    return build(name, source, **entry)


def load_tasks_yaml(path: str | Path, *, overwrite: bool = False) -> list[Task]:
    """Register the tasks (and mixtures) a YAML file declares; returns the tasks. Paths in it are
    relative to the file."""
    path = shipped(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; check the path of the task declarations")
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 (byte {err.object[err.start]:#04x} at offset {err.start}); save it as UTF-8"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        reason = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"{path}{line}: not valid YAML ({reason})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected `tasks:` and `mixtures:` lists at the top level")
    _check_keys(data, {"tasks", "mixtures"}, str(path))
    tasks = [
        _task_from_yaml(e, path.parent, f"{path}: tasks[{i}]") for i, e in enumerate(data.get("tasks") or [])
    ]
    for task in tasks:
        register_task(task, overwrite=overwrite)
    for i, entry in enumerate(data.get("mixtures") or []):
        where = f"{path}: mixtures[{i}]"
        if not isinstance(entry, dict) or "name" not in entry or "tasks" not in entry:
            raise ConfigError(f"{where}: a mixture needs `name:` and `tasks:`, got {entry!r}")
        _check_keys(entry, {"name", "tasks", "rate", "cap", "temperature"}, where)
        options = {k: v for k, v in entry.items() if k != "name" and k != "tasks"}
        if isinstance(options.get("temperature"), float):  # NaN passes Mixture's `<= 0` test
            try:
                check_finite("temperature", options["temperature"])
            except ConfigError as err:
                raise ConfigError(f"{where}: {err}") from None
        register_mixture(Mixture(entry["name"], entry["tasks"], **options), overwrite=overwrite)
    return tasks
