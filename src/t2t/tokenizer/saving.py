"""Writing a Tokenizer as a directory that t2t and transformers (AutoTokenizer) both read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from t2t.tokenizer.builders import sentinels
from t2t.tokenizer.core import Tokenizer
from t2t.tokenizer.files import (
    ADDED_TOKENS,
    MERGES,
    SPECIAL_TOKENS_MAP,
    SPIECE,
    TOKENIZER_CONFIG,
    TOKENIZER_JSON,
    VOCAB_JSON,
    VOCAB_TXT,
)
from t2t.tokenizer.specials import KIND_OF_HF_CLASS, SENTENCEPIECE, WORDPIECE
from t2t.utils import delegates
from t2t.utils.io import atomic_write_text, atomic_write_with


def save_directory(tokenizer: Tokenizer, directory: str | Path) -> list[Path]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | bytes] = {TOKENIZER_JSON: tokenizer.backend.to_str(pretty=True)}
    known = KIND_OF_HF_CLASS.get(tokenizer.hf_class) == tokenizer.kind
    if known:
        files.update(_vocab_files(tokenizer))
    files[TOKENIZER_CONFIG] = _dump(_tokenizer_config(tokenizer))
    files[SPECIAL_TOKENS_MAP] = _dump(_special_tokens_map(tokenizer))
    written = []
    for name, content in files.items():
        path = directory / name
        if isinstance(content, bytes):
            atomic_write_with(path, lambda tmp, data=content: tmp.write_bytes(data))
        else:
            atomic_write_text(path, content)
        written.append(path)
    for name in (SPIECE, VOCAB_TXT, VOCAB_JSON, MERGES, ADDED_TOKENS):
        stale = directory / name
        if name not in files and stale.exists():  # another kind's file would contradict tokenizer.json
            stale.unlink()
    return written


def _vocab_files(tokenizer: Tokenizer) -> dict[str, str | bytes]:
    model_vocab = tokenizer.backend.get_vocab(with_added_tokens=False)
    if tokenizer.kind == SENTENCEPIECE:
        return {SPIECE: tokenizer.spm_model} if tokenizer.spm_model is not None else {}
    if tokenizer.kind == WORDPIECE:
        return {VOCAB_TXT: "".join(f"{token}\n" for token in sorted(model_vocab, key=model_vocab.get))}
    merges = json.loads(tokenizer.backend.to_str())["model"]["merges"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in merges]
    return {
        VOCAB_JSON: json.dumps(dict(sorted(model_vocab.items(), key=lambda kv: kv[1])), ensure_ascii=False),
        MERGES: "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
    }


def _tokenizer_config(tokenizer: Tokenizer) -> dict[str, Any]:
    config = dict(tokenizer.extra_config)
    config["tokenizer_class"] = tokenizer.hf_class
    config.update(tokenizer.specials.to_hf())
    config.update(tokenizer.options)
    config.setdefault("clean_up_tokenization_spaces", False)
    return config


def _special_tokens_map(tokenizer: Tokenizer) -> dict[str, Any]:
    out: dict[str, Any] = tokenizer.specials.to_hf()
    if tokenizer.num_sentinels:
        out["additional_special_tokens"] = sentinels(tokenizer.num_sentinels)
    return out


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


delegates.provide("tokenizer.save_pretrained", save_directory)  # tokenizer.save_pretrained
