"""Tokenizer: one class for T5's sentencepiece unigram, BERT's WordPiece and GPT-2's byte-level BPE.

All three run on a `tokenizers.Tokenizer` (the Rust library transformers' fast tokenizers use), built as
transformers builds them (see builders.py), so batches go through the library's parallel batch path and
ids match transformers exactly. See docs/tokenizers.md for the layouts and what was matched.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import Tokenizer as Backend

from t2t.errors import ConfigError, DataError
from t2t.tokenizer import batch_encoding
from t2t.tokenizer.batch_encoding import BatchEncoding
from t2t.tokenizer.specials import BPE, HF_CLASS, SENTINEL, SpecialTokens
from t2t.utils import delegates

if TYPE_CHECKING:
    from t2t.tokenizer.streaming import TextStream

# Embedding rows come in multiples of this, as T5's 32100 tokens get 32128 rows: matrix shapes that are
# multiples of 128 run on the fast paths of accelerators (tensor cores, TPU tiles). The extra rows are
# never produced by the tokenizer; decode() skips them if a model emits one.
MODEL_VOCAB_MULTIPLE = 128


# Backend copies configured for truncation / padding kept per tokenizer (one per setting in use).
_CONFIGURED_KEPT = 16


def round_up(value: int, multiple: int = MODEL_VOCAB_MULTIPLE) -> int:
    return -(-value // multiple) * multiple


@dataclasses.dataclass(frozen=True)
class PairEncoding:
    """A sentence pair as BERT takes it: [CLS] A [SEP] B [SEP], token types 0 for A's part, 1 for B's."""

    ids: list[int]
    token_type_ids: list[int]


class Tokenizer:
    """Text to ids and back, with the special ids the models and objectives need.

    Build one with `Tokenizer.train(...)`, `Tokenizer.from_pretrained(dir)` or `load_tokenizer(dir)`;
    the constructor is for the loaders.
    """

    def __init__(
        self,
        backend: Backend,
        kind: str,
        specials: SpecialTokens,
        *,
        hf_class: str | None = None,
        options: dict[str, Any] | None = None,
        spm_model: bytes | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.kind = kind
        self.specials = specials
        self.hf_class = hf_class or HF_CLASS[kind]
        self.options = dict(options or {})  # the tokenizer_config.json keys that shaped the pipeline
        self.spm_model = spm_model  # spiece.model bytes, when known, written back on save
        self.extra_config = dict(extra_config or {})  # other tokenizer_config.json keys, kept on save
        # transformers cleans spaces before punctuation on decode when a config asks, but never for BPE.
        self._clean_up = bool(self.extra_config.get("clean_up_tokenization_spaces")) and kind != BPE
        self._vocab_size = backend.get_vocab_size(with_added_tokens=True)
        added = backend.get_added_tokens_decoder()
        self._special_ids = sorted(i for i, token in added.items() if token.special)
        self._num_sentinels = 0
        while backend.token_to_id(SENTINEL.format(self._num_sentinels)) is not None:
            self._num_sentinels += 1
        # Copies of the backend set to truncate and/or pad, per setting (see configured_backend).
        self._configured: dict[tuple[Any, Any], Backend] = {}

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Tokenizer:
        """Read a t2t or Hugging Face tokenizer directory (or a hub name, when online or cached)."""
        return delegates.call("tokenizer.from_pretrained", directory)  # t2t.tokenizer.loading

    def save_pretrained(self, directory: str | Path) -> list[Path]:
        """Write files that t2t and transformers (AutoTokenizer) both read; returns the paths written."""
        return delegates.call("tokenizer.save_pretrained", self, directory)  # t2t.tokenizer.saving

    @classmethod
    def train(cls, inputs: Sequence[str | Path], **config: Any) -> Tokenizer:
        """Train on text files: `Tokenizer.train(["corpus.txt"], kind="sentencepiece", vocab_size=8000)`.

        The keyword arguments are the fields of `TokenizerConfig`.
        """
        return delegates.call("tokenizer.train", inputs, **config)  # t2t.tokenizer.training

    # ---- sizes and special ids ----------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """Tokens the tokenizer can produce (T5: 32100), sentinels and special tokens included."""
        return self._vocab_size

    @property
    def model_vocab_size(self) -> int:
        """Embedding rows for a new model: vocab_size rounded up to a multiple of 128 (T5: 32128)."""
        return round_up(self._vocab_size)

    def __len__(self) -> int:
        return self._vocab_size

    def _role_id(self, role: str) -> int | None:
        token = getattr(self.specials, role)
        return None if token is None else self.backend.token_to_id(token)

    @property
    def pad_id(self) -> int | None:
        return self._role_id("pad")

    @property
    def eos_id(self) -> int | None:
        return self._role_id("eos")

    @property
    def bos_id(self) -> int | None:
        return self._role_id("bos")

    @property
    def unk_id(self) -> int | None:
        return self._role_id("unk")

    @property
    def cls_id(self) -> int | None:
        return self._role_id("cls")

    @property
    def sep_id(self) -> int | None:
        return self._role_id("sep")

    @property
    def mask_id(self) -> int | None:
        return self._role_id("mask")

    # transformers' names for the special tokens and their ids. pad_token (or pad_token_id) may be set to
    # a token of the vocabulary, as `tokenizer.pad_token = tokenizer.eos_token` gives GPT-2 padding; the
    # other roles are built into the post-processor and stay as loaded.
    @property
    def pad_token(self) -> str | None:
        return self.specials.pad

    @pad_token.setter
    def pad_token(self, token: str | None) -> None:
        if token is not None and self.backend.token_to_id(token) is None:
            raise ConfigError(f"pad_token={token!r} is not a token of this tokenizer; pick one of its tokens")
        self.specials = dataclasses.replace(self.specials, pad=token)

    @property
    def pad_token_id(self) -> int | None:
        return self.pad_id

    @pad_token_id.setter
    def pad_token_id(self, token_id: int | None) -> None:
        token = None if token_id is None else self.id_to_token(token_id)
        if token_id is not None and token is None:
            raise ConfigError(
                f"pad_token_id={token_id!r} is not an id of this tokenizer (0 to {len(self) - 1})"
            )
        self.pad_token = token

    @property
    def eos_token(self) -> str | None:
        return self.specials.eos

    @property
    def bos_token(self) -> str | None:
        return self.specials.bos

    @property
    def unk_token(self) -> str | None:
        return self.specials.unk

    @property
    def cls_token(self) -> str | None:
        return self.specials.cls

    @property
    def sep_token(self) -> str | None:
        return self.specials.sep

    @property
    def mask_token(self) -> str | None:
        return self.specials.mask

    @property
    def eos_token_id(self) -> int | None:
        return self.eos_id

    @property
    def bos_token_id(self) -> int | None:
        return self.bos_id

    @property
    def unk_token_id(self) -> int | None:
        return self.unk_id

    @property
    def cls_token_id(self) -> int | None:
        return self.cls_id

    @property
    def sep_token_id(self) -> int | None:
        return self.sep_id

    @property
    def mask_token_id(self) -> int | None:
        return self.mask_id

    @property
    def special_ids(self) -> list[int]:
        """Every id that is a special token (pad, eos, ..., sentinels), ascending."""
        return list(self._special_ids)

    @property
    def num_sentinels(self) -> int:
        return self._num_sentinels

    def sentinel_id(self, k: int) -> int:
        """The id of <extra_id_k>; <extra_id_0> is the highest id (T5: 32099), k counts down from there."""
        if not 0 <= k < self._num_sentinels:
            have = (
                f"has {self._num_sentinels} sentinels (<extra_id_0> .. <extra_id_{self._num_sentinels - 1}>)"
                if self._num_sentinels
                else "has no sentinels (they belong to T5-style sentencepiece vocabularies)"
            )
            raise ConfigError(f"sentinel_id({k}): this {self.kind} tokenizer {have}")
        return self.backend.token_to_id(SENTINEL.format(k))  # type: ignore[return-value]

    def id_to_token(self, token_id: int) -> str | None:
        return self.backend.id_to_token(token_id) if token_id >= 0 else None

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab(with_added_tokens=True)

    # ---- transformers' call -----------------------------------------------------------------------------
    @property
    def padding_side(self) -> str:
        """ "right" (transformers' default, GPT-2's too) or "left" (Llama's class); tokenizer_config.json's
        padding_side wins. Setting it is saved with the tokenizer, as transformers saves it."""
        return batch_encoding.default_padding_side(self)

    @padding_side.setter
    def padding_side(self, side: str) -> None:
        self.extra_config["padding_side"] = batch_encoding.check_side("padding_side", side)

    @property
    def truncation_side(self) -> str:
        side = self.extra_config.get("truncation_side", "right")
        return str(side) if side in batch_encoding.SIDES else "right"

    @truncation_side.setter
    def truncation_side(self, side: str) -> None:
        self.extra_config["truncation_side"] = batch_encoding.check_side("truncation_side", side)

    @property
    def model_max_length(self) -> int:
        """tokenizer_config.json's model_max_length (T5's: 512), or transformers' 1e30 (no limit): what
        truncation=True and padding="max_length" use when no max_length is given."""
        value = self.extra_config.get("model_max_length")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1:
            return int(value)
        return batch_encoding.VERY_LARGE_LENGTH

    @model_max_length.setter
    def model_max_length(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"model_max_length={value!r} should be a positive int")
        self.extra_config["model_max_length"] = value

    @property
    def model_input_names(self) -> list[str]:
        """What a call returns by default: input_ids and attention_mask (BERT also token_type_ids)."""
        return batch_encoding.model_input_names(self)

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_special_tokens_mask: bool = False,
        return_length: bool = False,
    ) -> BatchEncoding:
        """Encode a text, a list of texts, or pairs (`text_pair`) as transformers' fast tokenizers do:

            batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
            model.generate(**batch)

        Returns a BatchEncoding (a dict, also read by attribute) with `input_ids`, `attention_mask` and,
        for BERT, `token_type_ids`: lists for one text, lists of lists for a list, tensors [batch, length]
        with return_tensors="pt" ("np": numpy arrays). padding: False, True / "longest", "max_length";
        truncation: True / "longest_first", "only_first", "only_second", False; a max_length alone
        truncates. Rows are padded on `padding_side` (right, unless the tokenizer says left)."""
        return batch_encoding.call(
            self,
            text,
            text_pair,
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_special_tokens_mask=return_special_tokens_mask,
            return_length=return_length,
        )

    def configured_backend(
        self, truncation: tuple[Any, ...] | None, padding: tuple[Any, ...] | None
    ) -> Backend:
        """The backend, or a copy of it that truncates ((max_length, strategy, direction)) and / or pads
        ((length, direction, pad_id, pad_token, pad_to_multiple_of)); copies are kept for the next call."""
        key = (truncation, padding)
        if key == (None, None):
            return self.backend
        configured = self._configured.get(key)
        if configured is None:
            configured = copy.deepcopy(self.backend)
            if truncation is not None:
                max_length, strategy, direction = truncation
                configured.enable_truncation(max_length, strategy=strategy, direction=direction)
            if padding is not None:
                length, direction, pad_id, pad_token, multiple = padding
                configured.enable_padding(
                    direction=direction,
                    pad_id=pad_id,
                    pad_type_id=0,
                    pad_token=pad_token,
                    length=length,
                    pad_to_multiple_of=multiple,
                )
            if len(self._configured) >= _CONFIGURED_KEPT:  # settings in use are few; start again
                self._configured.clear()
            self._configured[key] = configured
        return configured

    # ---- encoding ------------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """The token strings of `text`, without special tokens (for looking at a segmentation)."""
        return self.backend.encode(_text(text), add_special_tokens=False).tokens

    def encode(self, text: str, add_special_tokens: bool = True, max_length: int | None = None) -> list[int]:
        """Ids of one text. T5 appends </s>, BERT wraps in [CLS] .. [SEP], GPT-2 adds nothing.

        max_length cuts the text so that the result, special tokens included, has at most that many ids
        (transformers' truncation=True).
        """
        backend = self._backend(max_length, add_special_tokens, pair=False)
        return backend.encode(_text(text), add_special_tokens=add_special_tokens).ids

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = True, max_length: int | None = None
    ) -> list[list[int]]:
        """encode() over many texts at once, in parallel in the Rust library."""
        backend = self._backend(max_length, add_special_tokens, pair=False)
        texts = _texts(texts)
        try:
            encodings = backend.encode_batch_fast(texts, add_special_tokens=add_special_tokens)
        except TypeError:
            _check_texts(texts)
            raise
        return [e.ids for e in encodings]

    def encode_pair(
        self, first: str, second: str, add_special_tokens: bool = True, max_length: int | None = None
    ) -> PairEncoding:
        """Two texts as one sequence with token types (BERT: [CLS] A [SEP] B [SEP], types 0.. then 1..).

        With max_length the longer text is cut first, one token at a time (transformers' longest_first).
        """
        backend = self._backend(max_length, add_special_tokens, pair=True)
        encoding = backend.encode(_text(first), _text(second), add_special_tokens=add_special_tokens)
        return PairEncoding(encoding.ids, encoding.type_ids)

    def encode_pair_batch(
        self,
        pairs: Sequence[tuple[str, str]],
        add_special_tokens: bool = True,
        max_length: int | None = None,
    ) -> list[PairEncoding]:
        backend = self._backend(max_length, add_special_tokens, pair=True)
        pairs = [(_text(a), _text(b)) for a, b in pairs]
        encodings = backend.encode_batch_fast(pairs, add_special_tokens=add_special_tokens)
        return [PairEncoding(e.ids, e.type_ids) for e in encodings]

    def _backend(self, max_length: int | None, add_special_tokens: bool, pair: bool) -> Backend:
        """The backend, or a copy of it that truncates to max_length (kept for the next call)."""
        if max_length is None:
            return self.backend
        reserved = self.backend.num_special_tokens_to_add(pair) if add_special_tokens else 0
        if max_length <= reserved:
            raise ConfigError(
                f"max_length={max_length} leaves no room for text beside the {reserved} special tokens; "
                f"use max_length > {reserved}"
            )
        return self.configured_backend((max_length, "longest_first", "right"), None)

    # ---- decoding ------------------------------------------------------------------------------------
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids`. Ids outside [0, vocab_size) (the padding rows of the embedding, -100 label
        padding) are skipped: they stand for no text."""
        text = self.backend.decode(self._in_vocab(ids), skip_special_tokens=skip_special_tokens)
        return _clean_up(text) if self._clean_up else text

    def first_unknown_id(self, ids: Iterable[int]) -> int | None:
        """The first id outside [0, vocab_size), or None. decode() skips such ids (they stand for no
        text); a caller that should refuse them instead, as `t2t tokenizer decode` does, asks this."""
        return next((i for i in map(int, ids) if not 0 <= i < self._vocab_size), None)

    def decode_batch(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        rows = batch.tolist() if hasattr(batch, "tolist") else batch
        texts = self.backend.decode_batch(
            [self._in_vocab(row) for row in rows], skip_special_tokens=skip_special_tokens
        )
        return [_clean_up(t) for t in texts] if self._clean_up else texts

    def batch_decode(self, sequences: Iterable[Iterable[int]], skip_special_tokens: bool = True) -> list[str]:
        """transformers' name for decode_batch (special tokens skipped unless told, as decode does)."""
        return self.decode_batch(sequences, skip_special_tokens=skip_special_tokens)

    def decode_stream(self, skip_special_tokens: bool = True) -> TextStream:
        """For streaming generation: `stream.step(id)` gives the new text each generated id completes."""
        return delegates.call("tokenizer.decode_stream", self, skip_special_tokens)  # t2t.tokenizer.streaming

    def _in_vocab(self, ids: Iterable[int]) -> list[int]:
        if hasattr(ids, "tolist"):  # a tensor or an array
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        size = self._vocab_size
        try:
            return [i for i in map(int, ids) if 0 <= i < size]
        except (TypeError, ValueError):
            raise DataError(
                "decode() takes one sequence of integer ids; use decode_batch() for a batch of them"
            ) from None

    def __repr__(self) -> str:
        return (
            f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size}, "
            f"model_vocab_size={self.model_vocab_size}, class={self.hf_class})"
        )


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """The tokenizer in a checkpoint or tokenizer directory (t2t's or Hugging Face's)."""
    return Tokenizer.from_pretrained(directory)


def _text(text: Any) -> str:
    if not isinstance(text, str):
        raise DataError(f"a text to encode should be a str, got {type(text).__name__}; convert it first")
    if not text.isascii():
        _check_unicode(text)
    return text


def _check_unicode(text: str) -> None:
    """A lone surrogate (a byte that was not UTF-8, kept by Python's surrogateescape, as in a command
    line's argument) is no character the tokenizer can read."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise DataError(
            f"the text holds {text[err.start : err.end]!r}, which is not a character (bytes that were not "
            "UTF-8); give UTF-8 text"
        ) from None


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise DataError("encode_batch() takes a list of texts, got one str; use encode() for one text")
    return texts if isinstance(texts, list) else list(texts)


def _check_texts(texts: list[Any]) -> None:
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"texts[{index}] should be a str, got {type(text).__name__}; convert it first")
        if not text.isascii():
            _check_unicode(text)


# transformers' clean_up_tokenization, for tokenizer configs that ask for it.
_CLEAN_UP = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
]


def _clean_up(text: str) -> str:
    for old, new in _CLEAN_UP:
        text = text.replace(old, new)
    return text
