"""Strict dataclass configs: typed fields, YAML/JSON files and dotted `key=value` overrides.

Every config in t2t (model, training, tasks) derives from `StrictConfig` so that an unknown key, a wrong
type or a value out of range is reported when the config is built, naming the key and, for a typo,
the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any, Self

import yaml

from t2t.errors import ConfigError


def closest(name: str, choices: typing.Iterable[str]) -> str:
    """A ' (did you mean X?)' hint for a misspelt name, or ''."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_choice(field: str, value: Any, allowed: typing.Iterable[Any]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        hint = closest(value, [str(a) for a in allowed]) if isinstance(value, str) else ""
        raise ConfigError(f"{field}={value!r} is not one of {', '.join(map(str, allowed))}{hint}")


def check_range(field: str, value: float, low: float | None = None, high: float | None = None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(f"{field}={value!r} is out of range [{lo}, {hi}]")


def _coerce(field: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a field annotation, converting only lossless cases (int -> float)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(field, value, option)
            except ConfigError as err:
                errors.append(err)
        raise errors[0] if errors else ConfigError(f"{field}: None is not allowed")
    if origin is typing.Literal:
        check_choice(field, value, typing.get_args(annotation))
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{field}={value!r} should be a list, got {type(value).__name__}")
        (item,) = typing.get_args(annotation)[:1] or (Any,)
        return [_coerce(f"{field}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{field}={value!r} should be a mapping, got {type(value).__name__}")
        return dict(value)
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{field}={value!r} should be true or false, got {type(value).__name__}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{field}={value!r} should be an integer, got {type(value).__name__}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{field}={value!r} should be a number, got {type(value).__name__}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{field}={value!r} should be a string, got {type(value).__name__}")
    if isinstance(annotation, type) and issubclass(annotation, StrictConfig):
        if isinstance(value, annotation):
            return value
        if isinstance(value, dict):
            return annotation.from_dict(value, prefix=f"{field}.")
        raise ConfigError(f"{field} should be a mapping, got {type(value).__name__}")
    return value


def parse_override_value(text: str) -> Any:
    """`key=value` on a command line: the value is read as YAML, so 3, 1e-3, true, [a, b] all work."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


class StrictConfig:
    """Mixin for dataclasses: strict construction from dicts and files, and validation hooks."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), hints[f.name]))
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError for impossible combinations; subclasses override."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any], prefix: str = "") -> Self:
        if not isinstance(data, dict):
            raise ConfigError(f"{prefix or 'config'} should be a mapping, got {type(data).__name__}")
        names = cls.field_names()
        for key in data:
            if key not in names:
                raise ConfigError(f"unknown key {prefix}{key!r}{closest(key, names)}")
        try:
            return cls(**data)
        except ConfigError as err:
            if prefix:
                raise ConfigError(f"{prefix}{err}") from None
            raise

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, StrictConfig) else value
        return out

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed, validated again."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def with_overrides(self, overrides: typing.Sequence[str]) -> Self:
        """Apply `key=value` / `a.b=value` strings (command-line style)."""
        data = self.to_dict()
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} should look like key=value")
            key, _, raw = item.partition("=")
            node = data
            parts = key.strip().split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown key {key!r}{closest(part, node)}")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"unknown key {key!r}{closest(parts[-1], node)}")
            node[parts[-1]] = parse_override_value(raw)
        return type(self).from_dict(data)

    def save(self, path: str | Path) -> None:
        """Write YAML or JSON (by suffix) atomically."""
        from t2t.utils.io import atomic_write_text

        path = Path(path)
        if path.suffix == ".json":
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        else:
            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as err:
            where = _error_line(err)
            kind = "JSON" if path.suffix == ".json" else "YAML"
            reason = " ".join(str(getattr(err, "problem", None) or err).split())
            raise ConfigError(f"{path}{where}: not valid {kind}: {reason}") from None
        try:
            return cls.from_dict(data or {})
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None


def _error_line(err: Exception) -> str:
    """':LINE' of a JSON or YAML parse error (1-based), so the message points into the file."""
    if isinstance(err, json.JSONDecodeError):
        return f":{err.lineno}"
    mark = getattr(err, "problem_mark", None)
    return f":{mark.line + 1}" if mark is not None else ""
