"""Broken or missing tokenizer files: a CheckpointError with one line that names the file and the fix."""

from __future__ import annotations

import json

import pytest

from t2t.errors import CheckpointError
from t2t.tokenizer import Tokenizer, load_tokenizer
from tokenizer_helpers import copy_files, write_corpus


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    corpus = write_corpus(root / "corpus.txt", lines=800)
    out = {}
    for kind, size in (("sentencepiece", 300), ("wordpiece", 300), ("bpe", 400)):
        Tokenizer.train([corpus], kind=kind, vocab_size=size).save_pretrained(root / kind)
        out[kind] = root / kind
    return out


def load_error(directory) -> str:
    with pytest.raises(CheckpointError) as info:
        load_tokenizer(directory)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_directory_without_tokenizer_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert (
        "no tokenizer files (tokenizer.json, spiece.model, vocab.txt or vocab.json + merges.txt)"
        in load_error(tmp_path)
    )


def test_a_file_instead_of_a_directory(saved):
    assert "is a file; pass the directory" in load_error(saved["bpe"] / "tokenizer.json")


def test_broken_tokenizer_json(saved, tmp_path):
    d = copy_files(saved["bpe"], tmp_path / "d", "tokenizer_config.json")
    (d / "tokenizer.json").write_text('{"model": ', encoding="utf-8")
    assert "tokenizer.json: not readable JSON" in load_error(d)
    (d / "tokenizer.json").write_text('{"model": {"type": "BPE", "vocab": 3}}', encoding="utf-8")
    assert "tokenizer.json: not a tokenizers file" in load_error(d)


def test_class_and_model_disagree(saved, tmp_path):
    d = copy_files(saved["bpe"], tmp_path / "d", "tokenizer.json")
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizerFast"}))
    message = load_error(d)
    assert "tokenizer_class BertTokenizer needs a WordPiece model but the file holds BPE" in message


def test_unsupported_model_type(saved, tmp_path):
    d = copy_files(saved["wordpiece"], tmp_path / "d", "tokenizer.json")
    data = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    data["model"] = {"type": "WordLevel", "vocab": {"a": 0, "[UNK]": 1}, "unk_token": "[UNK]"}
    (d / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    assert "a WordLevel model is not supported" in load_error(d)


def test_broken_spiece_model(tmp_path):
    (tmp_path / "spiece.model").write_bytes(b"\x00\x01not a model")
    assert "spiece.model: not a sentencepiece model" in load_error(tmp_path)


def test_other_class_needs_tokenizer_json(saved, tmp_path):
    d = copy_files(saved["sentencepiece"], tmp_path / "d", "spiece.model")
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    assert "tokenizer_class LlamaTokenizer without tokenizer.json is not supported" in load_error(d)


def test_missing_name_that_is_no_hub_repo(tmp_path):
    assert "no such directory" in load_error(tmp_path / "a" / "b" / "c")


@pytest.mark.parametrize("kind", ["sentencepiece", "wordpiece", "bpe"])
def test_vocabulary_files_alone_are_enough(saved, kind, tmp_path):
    names = {
        "sentencepiece": ["spiece.model"],
        "wordpiece": ["vocab.txt"],
        "bpe": ["vocab.json", "merges.txt"],
    }
    d = copy_files(saved[kind], tmp_path / "d", *names[kind])
    assert load_tokenizer(d).get_vocab() == load_tokenizer(saved[kind]).get_vocab()
