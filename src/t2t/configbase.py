"""Strict dataclass configs: typed fields, YAML/JSON files and dotted `key=value` overrides.

Every config in t2t (model, training, tasks) derives from `StrictConfig` so that an unknown key, a wrong
type or a value out of range is reported when the config is built, naming the key and, for a typo,
the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Self

import yaml

from t2t.errors import ConfigError
from t2t.utils.resources import shipped
from t2t.utils.yamlio import dump_yaml, load_yaml

ALLOW_INF = "allow_inf"
# A float field that may be infinite (never NaN): `limit: InfFloat = math.inf`. Every other float field
# must be finite, so `.nan` or `.inf` in a config is refused when the config is built.
InfFloat = Annotated[float, ALLOW_INF]
_MAX_EXACT_INT = 2**53  # a float up to here converts to an int exactly


def closest(name: str, choices: typing.Iterable[str]) -> str:
    """A ' (did you mean X?)' hint for a misspelt name, or ''."""
    if not isinstance(name, str):
        return ""
    match = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_choice(field: str, value: Any, allowed: typing.Iterable[Any]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        hint = closest(value, [str(a) for a in allowed]) if isinstance(value, str) else ""
        raise ConfigError(f"{field}={value!r} is not one of {', '.join(map(str, allowed))}{hint}")


def check_finite(field: str, value: float, allow_inf: bool = False) -> None:
    """NaN is never a setting (it compares false with everything, so range checks would let it by);
    infinity only where a field says it means something."""
    if isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and not allow_inf)):
        what = "not a number" if math.isnan(value) else "infinite"
        raise ConfigError(f"{field}={value!r} is {what}; give a finite number")


def check_range(
    field: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    allow_inf: bool = False,
) -> None:
    """`low <= value <= high` (None: unbounded on that side), NaN refused, infinity unless allow_inf."""
    check_finite(field, value, allow_inf)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ConfigError(f"{field}={value!r} is out of range [{lo}, {hi}]")


def _coerce(field: str, value: Any, annotation: Any) -> Any:
    """Check `value` against a field annotation, converting only lossless cases (int -> float, a whole
    float such as 1e6 -> int). A float must be finite unless the annotation is InfFloat."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *marks = typing.get_args(annotation)
        if base is float and ALLOW_INF in marks:
            return _coerce_float(field, value, allow_inf=True)
        return _coerce(field, value, base)
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
        return _coerce_int(field, value)
    if annotation is float:
        return _coerce_float(field, value)
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


def _coerce_int(field: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_EXACT_INT:
        return int(value)  # max_steps=1e5 means 100000
    raise ConfigError(f"{field}={value!r} should be an integer, got {type(value).__name__}")


def _coerce_float(field: str, value: Any, allow_inf: bool = False) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        check_finite(field, float(value), allow_inf)
        return float(value)
    raise ConfigError(f"{field}={value!r} should be a number, got {type(value).__name__}")


def parse_override_value(text: str) -> Any:
    """`key=value` on a command line: the value is read as config YAML (t2t.utils.yamlio), so 3, 1e-3,
    3e-4, 1_000, true, [a, b] all work; text that does not parse as YAML stays text, but a mapping with a
    repeated key (`{a: 1, a: 2}`) is a ConfigError."""
    try:
        return load_yaml(text)
    except yaml.constructor.ConstructorError as err:
        raise ConfigError(f"{text!r}: {err.problem}") from None
    except yaml.YAMLError:
        return text


class StrictConfig:
    """Mixin for dataclasses: strict construction from dicts and files, and validation hooks."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), include_extras=True)
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
            if not isinstance(key, str):
                raise ConfigError(f"{prefix or 'config'}: a key {key!r} is not a name; keys are field names")
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
            try:
                node[parts[-1]] = parse_override_value(raw)
            except ConfigError as err:
                raise ConfigError(f"override {key.strip()}={err}") from None
        return type(self).from_dict(data)

    def save(self, path: str | Path) -> None:
        """Write YAML or JSON (by suffix) atomically."""
        from t2t.utils.io import atomic_write_text

        path = Path(path)
        if path.suffix == ".json":
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        else:
            text = dump_yaml(self.to_dict())
        atomic_write_text(path, text)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path, data = read_config_file(path)
        if data is None:  # an empty file, or only comments: surely not the config meant
            raise ConfigError(
                f"{path}: the file is empty; write the {cls.__name__} fields in it (or {{}} for all defaults)"
            )
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None


def read_config_file(path: str | Path) -> tuple[Path, Any]:
    """(the path read, its YAML or JSON data): configs/X.yaml of the package when there is none here;
    a missing, unreadable or malformed file is one ConfigError naming the file (and line)."""
    path = shipped(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        text = path.read_text(encoding="utf-8")
        return path, _load_json(text, path) if path.suffix == ".json" else load_yaml(text)
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); give a "
            f"{kind} config file"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read; is it a {kind} config file?") from None
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        where = _error_line(err)
        reason = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"{path}{where}: not valid {kind}: {reason}") from None


def _load_json(text: str, path: Path) -> Any:
    """json.loads, but a key given twice in one object is an error (json keeps the last silently)."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(f"{path}: duplicate key {key!r} in one object; keep one of them")
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=unique)


def _error_line(err: Exception) -> str:
    """':LINE' of a JSON or YAML parse error (1-based), so the message points into the file."""
    if isinstance(err, json.JSONDecodeError):
        return f":{err.lineno}"
    mark = getattr(err, "problem_mark", None)
    return f":{mark.line + 1}" if mark is not None else ""
