"""Streamed record readers: JSONL, CSV, TSV, plain text, Parquet and Hugging Face `datasets`.

Every reader yields one dict per record and never holds more than a line (a Parquet row group, an
Arrow batch) in memory, so a corpus of any size reads in flat memory. A bad record is a DataError
naming `file:line`; with `skip_bad_records=True` it is counted instead, and the count is logged when
the file ends (and kept in `records.skipped`).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from t2t.configbase import closest
from t2t.errors import DataError
from t2t.utils.extras import require

log = logging.getLogger("t2t.data")

FORMATS = ("jsonl", "csv", "tsv", "text", "documents", "parquet", "hf")
SUFFIXES = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
    ".text": "text",
    ".parquet": "parquet",
    ".arrow": "hf",
}
TEXT_FIELD = "text"


def infer_format(path: Path) -> str:
    """The format a file's name implies; a directory is a `datasets.save_to_disk` folder."""
    if path.is_dir():
        return "hf"
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(SUFFIXES))
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {known} or pass format=")
    return fmt


class Records(Iterator[dict]):
    """An iterator over a file's records that knows where it is (`where`) and what it skipped."""

    def __init__(
        self,
        path: str | Path,
        *,
        format: str | None = None,
        skip_bad_records: bool = False,
        fields: Iterable[str] | None = None,
    ) -> None:
        self.name = str(path)
        self.path = Path(path)
        self.hub = self.name.startswith("hf:")
        self.hub_dataset = hub_spec(self.name) if self.hub else None  # (name, config, split)
        if not self.hub and not self.path.exists():
            raise DataError(f"{self.name}: no such file or directory; check the path")
        self.format = format or ("hf" if self.hub else infer_format(self.path))
        if self.format not in FORMATS:
            raise DataError(
                f"{self.name}: format={self.format!r} is not one of {', '.join(FORMATS)}"
                f"{closest(self.format, FORMATS)}"
            )
        self.skip_bad_records = skip_bad_records
        self.fields = list(fields or [])
        self.skipped = 0
        self.line = 0
        self._rows = self._read()

    @property
    def where(self) -> str:
        return f"{self.name}:{self.line}"

    def __iter__(self) -> Records:
        return self

    def __next__(self) -> dict:
        while True:
            try:
                record = next(self._rows)
            except StopIteration:
                if self.skipped:
                    log.warning("%s: skipped %d bad records (skip_bad_records=True)", self.name, self.skipped)
                raise
            try:
                return self._check(record)
            except DataError:
                if not self.skip_bad_records:
                    raise
                self.skipped += 1

    def _check(self, record: Any) -> dict:
        if not isinstance(record, dict):
            raise DataError(f"{self.where}: a record should be an object, got {type(record).__name__}")
        for field in self.fields:
            if field not in record or record[field] is None:
                found = ", ".join(map(repr, record)) or "none"
                raise DataError(
                    f'{self.where}: no "{field}" field (found {found}); add it or name the field to use'
                )
            value = record[field]
            if not isinstance(value, str):
                raise DataError(
                    f'{self.where}: "{field}" should be text, got {type(value).__name__} {value!r}'
                )
            if not value.strip():
                raise DataError(f'{self.where}: "{field}" is empty; give it some text or drop the record')
        return record

    def _read(self) -> Iterator[Any]:
        if self.format == "jsonl":
            return self._jsonl()
        if self.format in ("csv", "tsv"):
            return self._table("," if self.format == "csv" else "\t")
        if self.format == "text":
            return self._text_lines()
        if self.format == "documents":
            return self._documents()
        if self.format == "parquet":
            return self._parquet()
        return self._hf()

    def _lines(self) -> Iterator[str]:
        """Decoded lines with `self.line` kept current; a non-UTF-8 line is a bad record."""
        if self.path.is_dir():
            raise DataError(f"{self.name}: is a directory; pass a {self.format} file")
        with open(self.path, "rb") as fh:
            for self.line, raw in enumerate(fh, 1):
                try:
                    yield raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as err:
                    self._bad(
                        f"{self.where}: not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1}); "
                        "convert the file to UTF-8"
                    )

    def _bad(self, message: str) -> None:
        """Raise, or with skip_bad_records count the record and carry on."""
        if not self.skip_bad_records:
            raise DataError(message)
        self.skipped += 1

    def _jsonl(self) -> Iterator[Any]:
        for text in self._lines():
            if not text.strip():
                continue
            try:
                if _nested_deeper_than(text, MAX_JSON_DEPTH):  # before json's C parser can exhaust the stack
                    raise RecursionError
                yield json.loads(text)
            except json.JSONDecodeError as err:
                self._bad(
                    f"{self.where}: broken JSON ({err.msg} at column {err.colno}); fix or remove the line"
                )
            except RecursionError:  # json recurses once per level: `[[[[...` thousands deep
                self._bad(f"{self.where}: JSON nested too deeply to read; fix or remove the line")

    def _table(self, delimiter: str) -> Iterator[Any]:
        # TSV cells are taken as they are (quotes included), as GLUE's files are read: a sentence that
        # starts with a quote mark must not swallow the rows after it. CSV cells may be quoted.
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = _checked_rows(csv.reader(self._lines(), delimiter=delimiter, quoting=quoting), self)
        try:
            header = next(reader)
        except StopIteration:
            return
        if not any(h.strip() for h in header):
            raise DataError(f"{self.name}:1: the first row should name the columns")
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                fix = "a tab inside a cell?" if delimiter == "\t" else "quote cells that contain a comma"
                self._bad(f"{self.where}: {len(row)} columns where the header has {len(header)}; {fix}")
                continue
            yield dict(zip(header, row, strict=True))

    def _text_lines(self) -> Iterator[Any]:
        for text in self._lines():
            if text.strip():
                yield {TEXT_FIELD: text}

    def _documents(self) -> Iterator[Any]:
        """Documents separated by blank lines; a document's lines (its sentences) joined by newlines."""
        lines: list[str] = []
        for text in self._lines():
            if text.strip():
                lines.append(text)
            elif lines:
                yield {TEXT_FIELD: "\n".join(lines)}
                lines = []
        if lines:
            yield {TEXT_FIELD: "\n".join(lines)}

    def _parquet(self) -> Iterator[Any]:
        pq = require("pyarrow.parquet", "parquet", f"{self.name}: reading Parquet")

        try:
            table = pq.ParquetFile(self.path)
        except Exception as err:  # pyarrow raises several kinds for a file that is not Parquet
            raise DataError(
                f"{self.name}: not a Parquet file ({err}); check the path or pass format="
            ) from None
        for batch in table.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                self.line += 1
                yield row

    def _hf(self) -> Iterator[Any]:
        """A `save_to_disk` directory or `.arrow` file (memory-mapped), or `hf:NAME[/CONFIG][:SPLIT]`."""
        datasets = require("datasets", "datasets", f"{self.name}: reading Hugging Face datasets")
        if self.hub:
            yield from self._hub(datasets)
            return
        if self.path.is_dir():
            loaded = datasets.load_from_disk(str(self.path))
            if isinstance(loaded, datasets.DatasetDict):
                raise DataError(
                    f"{self.name}: holds splits {', '.join(loaded)}; pass the split's folder "
                    f"(e.g. {self.path / next(iter(loaded))})"
                )
            rows: Iterable[Any] = loaded
        else:
            rows = datasets.Dataset.from_file(str(self.path))
        for row in rows:
            self.line += 1
            yield row

    def _hub(self, datasets: Any) -> Iterator[Any]:
        """The hub's dataset streamed; whatever goes wrong there (offline, a wrong name, config or split)
        is one line that names the dataset and what to do."""
        name, config, split = self.hub_dataset  # type: ignore[misc]
        fix = (
            "check the name, config and split (hf:NAME[/CONFIG][:SPLIT]; a config follows ORG/NAME) and "
            "the network; offline, save the split with datasets' save_to_disk where it is online and pass "
            "that folder"
        )
        try:  # datasets raises many kinds here: ConnectionError, FileNotFoundError, ValueError, ...
            rows = iter(datasets.load_dataset(name, config, split=split, streaming=True))
        except Exception as err:
            raise DataError(
                f"{self.name}: cannot load it from the Hugging Face hub ({_one_line(err)}); {fix}"
            ) from None
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except Exception as err:
                self.line += 1  # the record it failed to read
                raise DataError(
                    f"{self.where}: reading from the Hugging Face hub failed ({_one_line(err)}); {fix}"
                ) from None
            self.line += 1
            yield row


def hub_spec(source: str) -> tuple[str, str | None, str]:
    """`hf:NAME[/CONFIG][:SPLIT]` -> (name, config, split) for `datasets.load_dataset(name, config,
    split=split)`. NAME is the hub id, `dataset` or `org/dataset`; a part after it is the config:
    `hf:nyu-mll/glue/sst2:validation`, `hf:allenai/c4/en`. The split is `train` unless given."""
    body, _, split = source.removeprefix("hf:").partition(":")
    parts = body.split("/")
    if len(parts) > 3 or not all(parts) or ":" in split:
        raise DataError(
            f"{source}: not a hub dataset name; write hf:NAME, hf:ORG/NAME, hf:ORG/NAME/CONFIG, each "
            "optionally followed by :SPLIT"
        )
    if len(parts) == 3:
        return "/".join(parts[:2]), parts[2], split or "train"
    return body, None, split or "train"


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def read_records(
    path: str | Path,
    *,
    format: str | None = None,
    skip_bad_records: bool = False,
    fields: list[str] | None = None,
) -> Records:
    """Stream the records of one file. format: jsonl, csv, tsv (first row names the columns), text (one
    example a line, as {"text": line}), documents (blank-line separated, as {"text": lines joined by
    newlines}), parquet, hf (a `datasets.save_to_disk` folder, an .arrow file or, from the hub,
    `hf:NAME[/CONFIG][:SPLIT]`: see `hub_spec`);
    inferred from the suffix when None. `fields` must be present, text and non-empty in every record."""
    return Records(path, format=format, skip_bad_records=skip_bad_records, fields=fields)


def _checked_rows(reader: Any, source: Any) -> Iterator[list[str]]:
    """csv's rows; its own errors (a cell past csv's 131,072-character limit, a line break inside an
    unquoted cell, as a file with bare CR line ends gives) as one DataError naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(
                f"{source.where}: cannot read the row ({err}); split the overlong cell, or save the file with "
                "LF or CRLF line ends"
            ) from None


MAX_JSON_DEPTH = 200  # deeper records are refused: json recurses in C once per level


def _nested_deeper_than(text: str, limit: int) -> bool:
    """Whether a JSON text nests arrays / objects more than `limit` deep (strings skipped). json.loads
    would raise RecursionError only at the interpreter's recursion limit, and where that limit has been
    raised its C recursion can overflow the stack first. Normal lines cost two str.count calls."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
