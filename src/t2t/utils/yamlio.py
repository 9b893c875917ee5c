"""YAML as users write it: numbers in every form they type, and no silently merged duplicate keys.

PyYAML implements YAML 1.1, whose float rule needs a dot and a signed exponent: `3e-4`, `1e6` and
`1E-3` come back as strings, and `010` is octal. `ConfigLoader` reads numbers as YAML 1.2 (and
Python) do: 3e-4, 1e6, 1E-3, .5, 5., 1_000, -2, +3.0, 0x1f, .inf, .nan. A key given twice in one mapping
is an error at the second one (`yaml.safe_load` keeps the last silently). `ConfigDumper` quotes a
string that the loader would read as a number, so what t2t writes reads back the same.

Every YAML file or `key=value` value a user gives t2t should go through `load_yaml`.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"

_DIGITS = r"[0-9](?:_?[0-9])*"  # 1000, 1_000 (an underscore only between digits, as Python)
_EXP = rf"[eE][-+]?{_DIGITS}"
INT_PATTERN = re.compile(
    rf"^[-+]?{_DIGITS}$|^0x[0-9a-fA-F](?:_?[0-9a-fA-F])*$|^0o[0-7](?:_?[0-7])*$|^0b[01](?:_?[01])*$"
)
FLOAT_PATTERN = re.compile(
    rf"^[-+]?(?:{_DIGITS}\.(?:{_DIGITS})?(?:{_EXP})?|\.{_DIGITS}(?:{_EXP})?|{_DIGITS}{_EXP})$"
    r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"
)
_NUMBER_START = list("-+0123456789.")


def _without_number_resolvers(resolvers: dict[str, list]) -> dict[str, list]:
    """PyYAML's implicit resolvers less its YAML 1.1 int and float rules (base 60, octal `010`, ...)."""
    return {
        first: [(tag, regexp) for tag, regexp in rules if tag not in (_INT_TAG, _FLOAT_TAG)]
        for first, rules in resolvers.items()
    }


def _with_number_resolvers(cls: type) -> None:
    cls.yaml_implicit_resolvers = _without_number_resolvers(yaml.SafeLoader.yaml_implicit_resolvers)
    # Integers first: the float rule needs a dot or an exponent, so the two never both match.
    cls.add_implicit_resolver(_INT_TAG, INT_PATTERN, _NUMBER_START)
    cls.add_implicit_resolver(_FLOAT_TAG, FLOAT_PATTERN, _NUMBER_START)


def parse_int(text: str) -> int:
    """A YAML 1.2 integer: decimal (leading zeros are not octal), 0x / 0o / 0b, underscores allowed."""
    text = text.replace("_", "")
    body = text.lstrip("+-").lower()
    if body[:2] in ("0x", "0o", "0b"):
        return int(text, 0)
    return int(text, 10)


def parse_float(text: str) -> float:
    """A YAML 1.2 float, `.inf` / `-.inf` / `.nan` included."""
    lowered = text.replace("_", "").lower()
    if lowered.lstrip("+-") == ".inf":
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(lowered)


class ConfigLoader(yaml.SafeLoader):
    """yaml.SafeLoader with YAML 1.2 numbers and a ConstructorError for a repeated key."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        return self._number(node, parse_int, "an integer")

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        return self._number(node, parse_float, "a number")

    def _number(self, node: yaml.ScalarNode, parse: Any, kind: str) -> Any:
        text = self.construct_scalar(node)
        try:
            return parse(str(text))
        except ValueError:
            raise ConstructorError(None, None, f"{text!r} is not {kind}", node.start_mark) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        if isinstance(node, MappingNode):
            self._check_duplicates(node)
        return super().construct_mapping(node, deep=deep)

    def _check_duplicates(self, node: MappingNode) -> None:
        """The mapping's own keys (not those a `<<: *base` merge brings, which it may override)."""
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:  # an unhashable key: construct_mapping reports it
                continue
            if seen is not None:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {seen}); keep one of them",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1


ConfigLoader.add_constructor(_INT_TAG, ConfigLoader.construct_yaml_int)
ConfigLoader.add_constructor(_FLOAT_TAG, ConfigLoader.construct_yaml_float)
_with_number_resolvers(ConfigLoader)


class ConfigDumper(yaml.SafeDumper):
    """yaml.SafeDumper that quotes a string ConfigLoader would read as a number (`"1e6"`)."""


_with_number_resolvers(ConfigDumper)


def load_yaml(text: str) -> Any:
    """Parse user YAML (a file's text or a `key=value` value) with ConfigLoader; yaml.YAMLError on bad
    input, whose `problem_mark` gives the line."""
    try:
        return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader: builds plain data only
    except RecursionError:  # PyYAML recurses once per level of nesting
        raise yaml.YAMLError("nested too deeply to read") from None


def dump_yaml(data: Any) -> str:
    """YAML that load_yaml reads back as `data` (keys in their order)."""
    return yaml.dump(data, Dumper=ConfigDumper, sort_keys=False)


__all__ = ["ConfigDumper", "ConfigLoader", "dump_yaml", "load_yaml", "parse_float", "parse_int"]
