"""The examples of each fine-tuning format, read from files: sentences and sentence pairs with a class or
a score (SST-2, MNLI, MRPC, STS-B, CoLA-like), and multiple choice (SWAG-like).

CoNLL-2003 tagging files live in conll.py and SQuAD JSON in squad.py, beside the code that turns them into
features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from t2t.errors import DataError
from t2t.finetune.readers import Record, read_records


@dataclass(frozen=True)
class TextExample:
    """A sentence (or a pair) and its label: a class index, or a float score for regression."""

    text: str
    pair: str | None
    label: int | float
    where: str = ""


@dataclass(frozen=True)
class ChoiceExample:
    """A context, its candidate endings and the index of the right one."""

    context: str
    endings: list[str]
    label: int
    where: str = ""


def label_names_of(records: Sequence[Record], field: str) -> list[str]:
    """The classes found in a training file, sorted so that the order does not depend on the file's."""
    return sorted({str(r.field(field, (str, int))) for r in records})


def load_text_examples(
    path: str | Path,
    text_field: str,
    pair_field: str | None,
    label_field: str,
    *,
    label_names: list[str] | None = None,
    regression: bool = False,
) -> tuple[list[TextExample], list[str] | None]:
    """Examples of a .tsv/.csv/.jsonl file and the class names (from `label_names` or, when None, the
    sorted classes of this file: pass a training file's names when reading its test file)."""
    records = read_records(path)
    if not regression and label_names is None:
        label_names = label_names_of(records, label_field)
    index = {name: i for i, name in enumerate(label_names or [])}
    examples = []
    for r in records:
        if regression:
            label: int | float = float(r.field(label_field, (int, float)))
        else:
            name = str(r.field(label_field, (str, int)))
            if name not in index:
                raise DataError(
                    f"{r.where}: label {name!r} is not one of {', '.join(index)}; fix it or set label_names"
                )
            label = index[name]
        pair = r.field(pair_field) if pair_field else None
        examples.append(TextExample(r.field(text_field), pair, label, r.where))
    return examples, label_names


def load_choice_examples(
    path: str | Path,
    context_field: str = "context",
    endings_field: str = "endings",
    label_field: str = "label",
) -> list[ChoiceExample]:
    """SWAG-like records: a list of endings in `endings`, or columns ending0, ending1, ... in a table."""
    examples = []
    for r in read_records(path):
        if endings_field in r.data:
            endings = r.data[endings_field]
            if not isinstance(endings, list) or not all(isinstance(e, str) and e.strip() for e in endings):
                raise DataError(f'{r.where}: "{endings_field}" should be a list of non-empty strings')
        else:
            keys = sorted(
                (k for k in r.data if k.startswith("ending") and k[6:].isdigit()), key=lambda k: int(k[6:])
            )
            if not keys:
                raise DataError(f'{r.where}: no "{endings_field}" list and no ending0, ending1, ... columns')
            endings = [r.field(k) for k in keys]
        if len(endings) < 2:
            raise DataError(f"{r.where}: {len(endings)} ending(s); multiple choice needs at least two")
        label = r.field(label_field, int)
        if not 0 <= label < len(endings):
            raise DataError(f"{r.where}: label {label} is not the index of one of the {len(endings)} endings")
        examples.append(ChoiceExample(r.field(context_field), list(endings), label, r.where))
    return examples
