"""Task: a named source of `{"inputs", "targets"}` text examples, with its prefix, postprocessing and
metric names (seqio's Task in plain Python). Tasks never see tensors; batching is t2t.data.stream's."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from t2t.configbase import closest
from t2t.data.postprocess import Postprocess, named_postprocess, strip
from t2t.data.sources import SUFFIXES, TEXT_FIELD, Records, read_records
from t2t.errors import DataError

SPLITS = ("train", "validation", "test")
Source = str | Path | Mapping[str, str | Path] | Callable[[str], Iterable[dict]]


class NoTargets(str):
    """The targets of a record that has only text (a pretraining corpus): "" to the pretraining
    objectives, which read the text alone, but it remembers the record, so that text-to-text training
    and evaluation, which need real targets, stop there (`require_targets`) instead of learning and
    scoring empty answers."""

    where: str
    fields: tuple[str, ...]

    def __new__(cls, where: str, fields: Iterable[str]) -> NoTargets:
        made = super().__new__(cls, "")
        made.where, made.fields = where, tuple(fields)
        return made

    def __reduce__(self) -> tuple:
        return (NoTargets, (self.where, self.fields))

    def error(self, purpose: str) -> DataError:
        found = ", ".join(map(repr, self.fields)) or "none"
        return DataError(
            f'{self.where}: the record has "{TEXT_FIELD}" but no "inputs" and "targets" (fields: {found}), '
            f"and {purpose} needs targets; add inputs/targets fields, or map the record's fields "
            "(tasks YAML `fields: {inputs: text, targets: label}`, or a template such as classification)"
        )


def require_targets(example: Mapping[str, Any], purpose: str) -> None:
    """DataError (file:line, the fields found) when `example` came from a text-only record."""
    targets = example.get("targets")
    if isinstance(targets, NoTargets):
        raise targets.error(purpose)


def split_files(directory: Path) -> dict[str, Path]:
    """`train.jsonl`, `validation.tsv`, ... in a folder, one file per split (or a `datasets` DatasetDict)."""
    if (directory / "dataset_dict.json").exists():
        return {p.name: p for p in sorted(directory.iterdir()) if p.is_dir()}
    if (directory / "dataset_info.json").exists() or (directory / "state.json").exists():
        return {"train": directory}
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix.lower() in SUFFIXES and not path.name.startswith("."):
            if path.stem in found:
                raise DataError(f"{directory}: two files for split {path.stem!r}; keep one")
            found[path.stem] = path
    if not found:
        raise DataError(f"{directory}: no data files (expected e.g. train.jsonl, validation.jsonl)")
    return found


class Task:
    """source: a file (the train split), a folder of `SPLIT.EXT` files, a `{split: path}` dict, or a
    callable `split -> Iterable[dict]`. preprocess maps a record to a dict with "inputs" and "targets"
    (None drops it); records with "text" but no "inputs" (plain-text corpora) get inputs=text and empty
    targets (NoTargets: the pretraining objectives take them, text2text and evaluation refuse them).
    postprocess: a callable, or the name(s) of t2t.data.postprocess's (default "strip")."""

    def __init__(
        self,
        name: str,
        source: Source,
        *,
        preprocess: Callable[[dict], dict | None] | None = None,
        postprocess: Postprocess | str | Sequence[str] | None = None,
        metrics: Sequence[str] = ("exact_match",),
        prefix: str = "",
        format: str | None = None,
        skip_bad_records: bool = False,
        splits: Sequence[str] | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise DataError(f"a task needs a name, got {name!r}")
        self.name = name
        self.prefix = prefix
        self.metrics = tuple(metrics)
        self.format = format
        self.skip_bad_records = skip_bad_records
        self._preprocess = preprocess
        if postprocess is None:
            postprocess = strip
        elif not callable(postprocess):
            postprocess = named_postprocess(postprocess, f"task {name!r}")
        self._postprocess = postprocess
        self._sizes: dict[str, int] = {}
        self.skipped: dict[str, int] = {}  # split -> bad records skipped in the latest pass
        if callable(source):
            self._reader: Callable[[str], Iterable[dict]] | None = source
            self._files: dict[str, Path] = {}
            self.splits = tuple(splits or ("train",))
        else:
            self._reader = None
            self._files = self._resolve(source)
            self.splits = tuple(splits or self._files)

    def _resolve(self, source: Source) -> dict[str, Path]:
        if isinstance(source, Mapping):
            return {str(k): Path(v) for k, v in source.items()}
        path = Path(source)  # type: ignore[arg-type]
        if str(source).startswith("hf:"):
            return {"train": path}
        if not path.exists():
            raise DataError(f"task {self.name!r}: {path}: no such file or directory; check the path")
        return split_files(path) if path.is_dir() else {"train": path}

    def __repr__(self) -> str:
        return f"Task({self.name!r}, splits={list(self.splits)}, metrics={list(self.metrics)})"

    def postprocess(self, text: str) -> Any:
        """Applied to predictions and targets alike before the metrics compare them."""
        if isinstance(text, NoTargets):  # scoring against a text-only record's empty target
            raise text.error(f"scoring task {self.name!r}")
        return self._postprocess(text)

    def _records(self, split: str) -> tuple[Iterable[dict], Records | None]:
        if split not in self.splits:
            raise DataError(
                f"task {self.name!r} has no split {split!r}{closest(split, self.splits)}; "
                f"it has {', '.join(self.splits)}"
            )
        if self._reader is not None:
            return self._reader(split), None
        path = self._files[split]
        records = read_records(
            path if not str(path).startswith("hf:") else str(path),
            format=self.format,
            skip_bad_records=self.skip_bad_records,
        )
        return records, records

    def examples(self, split: str = "train", start: int = 0) -> Iterator[dict]:
        """The split's examples in file order, prefix applied; `start` skips that many examples."""
        rows, records = self._records(split)
        yield from itertools.islice(self._produce(split, rows, records), start, None)

    def _produce(self, split: str, rows: Iterable[dict], records: Records | None) -> Iterator[dict]:
        for number, record in enumerate(rows, 1):
            where = records.where if records is not None else f"task {self.name!r} {split} record {number}"
            try:
                example = self._example(record, where)
            except DataError:
                if records is None or not self.skip_bad_records:
                    raise
                records.skipped += 1
                continue
            if records is not None:
                self.skipped[split] = records.skipped  # bad records of this pass so far
            if example is not None:
                yield example
        if records is not None:
            self.skipped[split] = records.skipped

    def _example(self, record: dict, where: str) -> dict | None:
        if not isinstance(record, dict):
            raise DataError(f"{where}: a record should be an object, got {type(record).__name__}")
        if self._preprocess is not None:
            try:
                out = self._preprocess(record)
            except KeyError as err:
                found = ", ".join(map(repr, record)) or "none"
                raise DataError(
                    f"{where}: task {self.name!r} needs field {err} (found {found}); fix the data or the "
                    "task's field names"
                ) from None
            if out is None:
                return None
        else:
            out = record
        return self._finish(dict(out), where)

    def _finish(self, out: dict, where: str) -> dict:
        if "inputs" not in out and isinstance(out.get(TEXT_FIELD), str):
            fields = tuple(out)
            out["inputs"] = out[TEXT_FIELD]
            out.setdefault("targets", NoTargets(f"{where}: task {self.name!r}", fields))
        for field in ("inputs", "targets"):
            if field not in out or out[field] is None:
                found = ", ".join(map(repr, out)) or "none"
                raise DataError(
                    f'{where}: no "{field}" field (found {found}); add it or give task {self.name!r} a '
                    "preprocess / field names"
                )
            if not isinstance(out[field], str):
                kind = type(out[field]).__name__
                raise DataError(f'{where}: "{field}" should be text, got {kind} {out[field]!r}')
        if not out["inputs"].strip():
            raise DataError(f'{where}: "inputs" is empty; give it some text or drop the record')
        if TEXT_FIELD not in out and not out["targets"].strip():
            raise DataError(f'{where}: "targets" is empty; give it some text or drop the record')
        out["inputs"] = self.prefix + out["inputs"]
        return out

    def num_examples(self, split: str = "train") -> int:
        """Examples in a split (counted once by reading it; used by examples-proportional mixing)."""
        if split not in self._sizes:
            self._sizes[split] = sum(1 for _ in self.examples(split))
        return self._sizes[split]
