"""Record readers: every format streamed, errors that name file:line, skip_bad_records counts."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from t2t.data import Task, read_records
from t2t.errors import DataError


def write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_csv_tsv(tmp_path):
    rows = [{"inputs": 'a, "b"', "targets": "x"}, {"inputs": "c\td", "targets": "y"}]
    jsonl = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert list(read_records(jsonl)) == rows
    csv_text = 'inputs,targets\n"a, ""b""",x\n"c\td",y\n'
    assert list(read_records(write(tmp_path / "d.csv", csv_text))) == rows
    # TSV (IANA text/tab-separated-values, GLUE's files) has no quoting: cells are taken as they are, so
    # a sentence that opens with a quote mark keeps it and never swallows the rows after it.
    tsv_text = 'inputs\ttargets\n"Go," he said.\tx\na "b" c\ty\n'
    tsv_rows = [{"inputs": '"Go," he said.', "targets": "x"}, {"inputs": 'a "b" c', "targets": "y"}]
    assert list(read_records(write(tmp_path / "d.tsv", tsv_text))) == tsv_rows


def test_plain_text_lines_and_documents(tmp_path):
    path = write(tmp_path / "c.txt", "first line\nsecond one\n\n\nthird\r\n")
    assert [r["text"] for r in read_records(path)] == ["first line", "second one", "third"]
    docs = [r["text"] for r in read_records(path, format="documents")]
    assert docs == ["first line\nsecond one", "third"]


def test_parquet_and_hf_datasets(tmp_path):
    table = pa.table({"inputs": ["p", "q", "r"], "targets": ["1", "2", "3"]})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=2)
    assert [r["inputs"] for r in read_records(tmp_path / "d.parquet")] == ["p", "q", "r"]
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["u", "v"]}).save_to_disk(str(tmp_path / "ds"))
    records = read_records(tmp_path / "ds")
    assert [r["text"] for r in records] == ["u", "v"] and records.where.endswith("ds:2")
    (arrow,) = (tmp_path / "ds").glob("*.arrow")  # one file of a saved dataset, memory-mapped
    assert [r["text"] for r in read_records(arrow)] == ["u", "v"]
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["w"]})})
    splits.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match=r"dd: holds splits train; pass the split's folder"):
        list(read_records(tmp_path / "dd"))


@pytest.fixture
def fake_hub(monkeypatch):
    """datasets.load_dataset replaced: no network; records each call and streams one row naming it."""
    datasets = pytest.importorskip("datasets")
    calls = []

    def load_dataset(name, config=None, *, split=None, streaming=False):
        calls.append((name, config, split, streaming))
        return iter([{"text": f"{name}|{config}|{split}"}])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


@pytest.mark.parametrize(
    ("source", "name", "config", "split"),
    [
        ("hf:squad", "squad", None, "train"),
        ("hf:rajpurkar/squad:validation", "rajpurkar/squad", None, "validation"),
        ("hf:nyu-mll/glue/sst2:test", "nyu-mll/glue", "sst2", "test"),
        ("hf:allenai/c4/en", "allenai/c4", "en", "train"),
    ],
)
def test_hub_name_config_and_split(fake_hub, source, name, config, split):
    records = read_records(source)
    assert [r["text"] for r in records] == [f"{name}|{config}|{split}"]
    assert fake_hub == [
        (name, config, split, True)
    ]  # load_dataset(NAME, CONFIG, split=SPLIT, streaming=True)
    assert records.where == f"{source}:1"
    examples = list(Task("hub", source).examples())  # and through a Task, as a YAML `source:` gives it
    assert examples == [
        {"text": f"{name}|{config}|{split}", "inputs": f"{name}|{config}|{split}", "targets": ""}
    ]


@pytest.mark.parametrize("source", ["hf:", "hf:a/b/c/d", "hf:a//b", "hf:a/b:train:x"])
def test_hub_name_that_cannot_be_read(fake_hub, source):
    with pytest.raises(
        DataError, match=r"not a hub dataset name; write hf:NAME, hf:ORG/NAME, hf:ORG/NAME/CONFIG"
    ):
        read_records(source)
    assert fake_hub == []


def test_hub_failures_are_one_line(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(name, config=None, **options):
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (OfflineModeIsEnabled)\nTraceback ...")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as info:
        next(read_records("hf:org/data/cfg:validation"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "hf:org/data/cfg:validation: cannot load it from the Hugging Face hub (Couldn't reach 'org/data' on "
        "the Hub (OfflineModeIsEnabled)); check the name, config and split"
    )
    assert "save_to_disk" in message

    def broken_stream():
        yield {"text": "first"}
        raise ConnectionError("connection reset\nmore")

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: broken_stream())
    records = read_records("hf:org/data")
    assert next(records) == {"text": "first"}
    with pytest.raises(
        DataError,
        match=r"^hf:org/data:2: reading from the Hugging Face hub failed \(connection reset\); check",
    ):
        next(records)


@pytest.mark.slow
def test_hub_offline_for_real_is_one_line(tmp_path):
    """datasets itself, offline (HF_HUB_OFFLINE=1 so it fails at once): a DataError of one line."""
    pytest.importorskip("datasets")
    code = (
        "from t2t.data import read_records\n"
        "from t2t.errors import DataError\n"
        "try:\n    next(read_records('hf:someone/nothing/cfg:train'))\n"
        "except DataError as err:\n    print(err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout + out.stderr
    assert lines[0].startswith("hf:someone/nothing/cfg:train: cannot load it from the Hugging Face hub (")


def test_errors_name_file_and_line(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: no such file"):
        read_records(tmp_path / "nope.jsonl")
    bad_json = write(tmp_path / "b.jsonl", '{"inputs": "a", "targets": "b"}\n{"inputs": "a",\n')
    with pytest.raises(DataError, match=r"b\.jsonl:2: broken JSON"):
        list(read_records(bad_json))
    latin = write(tmp_path / "l.txt", b"ok\n" + "caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"l\.txt:2: not UTF-8 \(byte 0xe9 at column 4\)"):
        list(read_records(latin))
    missing = write(tmp_path / "m.jsonl", '{"inputs": "a"}\n{"targets": "b"}\n')
    with pytest.raises(DataError, match=r'm\.jsonl:2: no "inputs" field'):
        list(read_records(missing, fields=["inputs"]))
    typed = write(tmp_path / "t.jsonl", '{"inputs": "ok"}\n{"inputs": 3}\n')
    with pytest.raises(DataError, match=r't\.jsonl:2: "inputs" should be text, got int 3$'):
        list(read_records(typed, fields=["inputs"]))
    empty = write(tmp_path / "e.jsonl", '{"inputs": "x"}\n{"inputs": "  "}\n')
    with pytest.raises(DataError, match=r'e\.jsonl:2: "inputs" is empty'):
        list(read_records(empty, fields=["inputs"]))
    ragged = write(tmp_path / "r.csv", "a,b\n1,2\n1,2,3\n")
    with pytest.raises(DataError, match=r"r\.csv:3: 3 columns where the header has 2"):
        list(read_records(ragged))
    with pytest.raises(DataError, match=r"unknown file type '\.xyz'"):
        read_records(write(tmp_path / "f.xyz", "x"))


def test_skip_bad_records_counts_and_reports(tmp_path, caplog):
    text = b'{"inputs": "a"}\nbroken\n{"inputs": ""}\n{"inputs": "b"}\n' + b"\xff\n"
    path = write(tmp_path / "s.jsonl", text)
    records = read_records(path, skip_bad_records=True, fields=["inputs"])
    with caplog.at_level(logging.WARNING, logger="t2t.data"):
        assert [r["inputs"] for r in records] == ["a", "b"]
    assert records.skipped == 3
    assert "skipped 3 bad records" in caplog.text


def test_reading_is_lazy(tmp_path):
    path = write(tmp_path / "big.jsonl", '{"inputs": "a"}\nbroken\n')
    records = read_records(path)
    assert next(records) == {"inputs": "a"}  # the broken second line is not read yet
    assert records.where.endswith("big.jsonl:1")


def test_a_deeply_nested_jsonl_line_is_a_data_error_even_with_a_raised_recursion_limit(tmp_path):
    """json's C parser recurses once per level; with the recursion limit raised (as some tools do) a
    line of 100,000 brackets would overflow the stack: it is refused before parsing."""
    import sys

    from t2t.data.sources import read_records
    from t2t.errors import DataError

    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200_000)
    try:
        with pytest.raises(DataError, match="nested too deeply"):
            list(read_records(path))
    finally:
        sys.setrecursionlimit(limit)
