"""Reading the fine-tuning data formats: TSV / CSV with a header row and JSONL, one record per line.

Each record keeps its file:line, so that a missing field, a wrong type or an unknown label is reported
where it is (`DataError: data/train.tsv:17: no "label" field; ...`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2t.errors import DataError

TABLE_SUFFIXES = {".tsv": "\t", ".csv": ","}


@dataclass(frozen=True)
class Record:
    """One row of a data file and where it came from."""

    where: str  # "file:line"
    data: dict[str, Any]

    def field(self, name: str, kind: type | tuple[type, ...] = str) -> Any:
        """The value of `name`, checked to be of `kind` (a table's cells are strings: numbers are parsed)."""
        if name not in self.data or self.data[name] is None:
            found = ", ".join(map(repr, self.data)) or "none"
            raise DataError(f'{self.where}: no "{name}" field (found {found}); add it or set the field name')
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, str) and str not in kinds:
            value = _parse_number(value, kinds)
        if not isinstance(value, kinds) or isinstance(value, bool):
            names = " or ".join(k.__name__ for k in kinds)
            raise DataError(f'{self.where}: "{name}" should be {names}, got {value!r}')
        if isinstance(value, str) and not value.strip():
            raise DataError(f'{self.where}: "{name}" is empty; give it some text or drop the line')
        return value


def _parse_number(text: str, kinds: tuple[type, ...]) -> Any:
    for kind in (int, float):
        if kind in kinds:
            try:
                return kind(text)
            except ValueError:
                continue
    return text


def check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: no such file; check the path (data/builtin/finetune holds the built-in sets)"
        )
    return path


def read_records(path: str | Path) -> list[Record]:
    """Records of a .jsonl, .tsv or .csv file (tables: the first row names the columns)."""
    path = check_file(path)
    try:
        if path.suffix in TABLE_SUFFIXES:
            records = _read_table(path, TABLE_SUFFIXES[path.suffix])
        elif path.suffix in (".jsonl", ".json"):
            records = _read_jsonl(path)
        else:
            raise DataError(f"{path}: unknown format {path.suffix!r}; use .jsonl, .tsv or .csv")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
        ) from None
    if not records:
        raise DataError(f"{path}: no records; write one example per line")
    return records


def _read_jsonl(path: Path) -> list[Record]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path}:{number}: not valid JSON ({err.msg}, column {err.colno}); write one object per line"
                ) from None
            except RecursionError:  # json recurses once per level: `[[[[...` thousands deep
                raise DataError(
                    f"{path}:{number}: JSON nested too deeply to read; write one flat object per line"
                ) from None
            if not isinstance(value, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
            records.append(Record(f"{path}:{number}", value))
    return records


def _read_table(path: Path, delimiter: str) -> list[Record]:
    records = []
    with open(path, encoding="utf-8", newline="") as fh:
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.reader(fh, delimiter=delimiter, quoting=quoting)
        try:
            header = next(reader, None)
            rows = [(reader.line_num, row) for row in reader]
        except csv.Error as err:
            raise DataError(
                f"{path}:{reader.line_num}: cannot read the row ({err}); split the overlong cell, or save "
                "the file with LF or CRLF line ends"
            ) from None
        if not header:
            return []
        for number, row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{path}:{number}: {len(row)} columns but the header has {len(header)} "
                    f"({', '.join(header)}); fix the row (a tab inside a text?)"
                )
            records.append(Record(f"{path}:{number}", dict(zip(header, row))))
    return records
