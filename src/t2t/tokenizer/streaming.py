"""Decoding ids one at a time, for text that appears while a model generates it.

Decoding each new id alone is wrong: a byte-level piece may hold half of a UTF-8 character, and a
sentencepiece or WordPiece piece's leading space depends on what came before. `tokenizers`' DecodeStream
keeps that state; this wraps it with t2t's rule for ids outside the vocabulary (skipped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenizers.decoders import DecodeStream

from t2t.utils import delegates

if TYPE_CHECKING:
    from t2t.tokenizer.core import Tokenizer


class TextStream:
    """`step(id)` returns the text that id makes final ('' while a character is still incomplete); the
    pieces joined equal `tokenizer.decode(ids)` (without transformers' optional space clean-up)."""

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = True) -> None:
        self._backend = tokenizer.backend
        self._size = tokenizer.vocab_size
        self._stream = DecodeStream(skip_special_tokens=skip_special_tokens)

    def step(self, token_id: int) -> str:
        token_id = int(token_id)
        if not 0 <= token_id < self._size:  # a padding row of the embedding: no text
            return ""
        return self._stream.step(self._backend, token_id) or ""


delegates.provide("tokenizer.decode_stream", TextStream)  # tokenizer.decode_stream()
