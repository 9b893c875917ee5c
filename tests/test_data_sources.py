"""Record readers: every format streamed, errors that name file:line, skip_bad_records counts."""

from __future__ import annotations

import json
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from t2t.data import read_records
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
    tsv_text = 'inputs\ttargets\n"a, ""b"""\tx\n"c\td"\ty\n'
    assert list(read_records(write(tmp_path / "d.tsv", tsv_text))) == rows


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
    assert [r["text"] for r in read_records(tmp_path / "ds")] == ["u", "v"]


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
    typed = write(tmp_path / "t.jsonl", '{"inputs": 3}\n')
    with pytest.raises(DataError, match=r'"inputs" should be text, got int'):
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
