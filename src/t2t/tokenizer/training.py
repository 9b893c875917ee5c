"""Training a vocabulary from text files: T5's sentencepiece unigram, BERT's WordPiece, GPT-2's BPE.

`vocab_size` always counts every token the tokenizer will have: special tokens and, for sentencepiece,
the sentinels. For T5's layout, 32100 gives a 32000-piece spiece.model plus <extra_id_0..99>, exactly
as T5 ships; the model then gets `model_vocab_size` (32128) embedding rows.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from tokenizers import Tokenizer as Backend
from tokenizers import models, normalizers, pre_tokenizers, trainers

from t2t.configbase import StrictConfig, check_range
from t2t.errors import ConfigError, DataError
from t2t.tokenizer.core import Tokenizer
from t2t.tokenizer.loading import bpe_tokenizer, sentencepiece_tokenizer, wordpiece_tokenizer
from t2t.tokenizer.specials import DEFAULT_SPECIALS, GPT2_EOT, SENTENCEPIECE, WORDPIECE
from t2t.utils import delegates
from t2t.utils.io import user_path
from t2t.utils.resources import shipped

_BYTES = 256  # a byte-level BPE starts from all 256 bytes
# The largest vocabulary t2t trains. Published ones stop near 256k tokens; the `tokenizers` trainers
# reserve memory for every token asked before they look at the corpus (2**31 asks for 141 GB and aborts
# the process), and sentencepiece counts pieces in an int32.
MAX_VOCAB_SIZE = 1 << 22
log = logging.getLogger("t2t.tokenizer")


@dataclasses.dataclass
class TokenizerConfig(StrictConfig):
    """How to train a vocabulary. Fields that concern one kind only say so."""

    kind: Literal["sentencepiece", "wordpiece", "bpe"] = SENTENCEPIECE
    vocab_size: int = 32100  # all tokens, special tokens and sentinels included (see module docstring)
    extra_ids: int = 100  # sentencepiece: sentinels <extra_id_0> .. on top of the vocabulary
    character_coverage: float = 1.0  # sentencepiece: share of characters kept; 0.9995 for CJK corpora
    max_sentences: int = 5_000_000  # sentencepiece: lines sampled from a larger corpus (memory bound)
    # sentencepiece: longest piece in characters (its default, and T5's, is 16). A shorter limit keeps
    # compounds apart ("drei|hundert" rather than "dreihundertfünf"), which helps a small model compose.
    max_piece_length: int = 16
    lowercase: bool = True  # wordpiece: BERT "uncased" normalisation (lower case, accents stripped)
    min_frequency: int = 2  # wordpiece, bpe: a merge seen fewer times is not learnt

    def validate(self) -> None:
        if self.vocab_size > MAX_VOCAB_SIZE:
            raise ConfigError(
                f"vocab_size={self.vocab_size} is more than t2t trains (at most {MAX_VOCAB_SIZE:,}; "
                "published vocabularies have up to about 256,000 tokens); pick a smaller vocab_size"
            )
        check_range("extra_ids", self.extra_ids, 0, 1000)
        check_range("character_coverage", self.character_coverage, 0.5, 1.0)
        check_range("max_sentences", self.max_sentences, 1)
        check_range("max_piece_length", self.max_piece_length, 1, 512)
        check_range("min_frequency", self.min_frequency, 0)
        least = self.min_vocab_size()
        if self.vocab_size < least:
            raise ConfigError(
                f"vocab_size={self.vocab_size} is too small for a {self.kind} vocabulary: it needs at "
                f"least {least} ({self._least_why()}); raise vocab_size"
            )

    def reserved_tokens(self) -> int:
        """Tokens a vocabulary of this kind has before it learns any: specials, sentinels, bytes."""
        if self.kind == SENTENCEPIECE:
            return len(DEFAULT_SPECIALS[SENTENCEPIECE].items()) + self.extra_ids
        if self.kind == WORDPIECE:
            return len(DEFAULT_SPECIALS[WORDPIECE].items())
        return _BYTES + 1

    def min_vocab_size(self) -> int:
        return self.reserved_tokens() + 1

    def _least_why(self) -> str:
        if self.kind == SENTENCEPIECE:
            return f"pad, eos, unk, {self.extra_ids} sentinels and at least one piece"
        if self.kind == WORDPIECE:
            return "[PAD] [UNK] [CLS] [SEP] [MASK] and at least one piece"
        return "256 bytes, <|endoftext|> and at least one merge"


def train_tokenizer(inputs: Sequence[str | Path], config: TokenizerConfig | None = None) -> Tokenizer:
    """Train a vocabulary of `config.kind` on UTF-8 text files (one or more lines of text each)."""
    config = config or TokenizerConfig()
    paths = _check_inputs(inputs)
    lines = LineReader(paths)
    if config.kind == SENTENCEPIECE:
        tokenizer = _train_sentencepiece(lines, config)
    elif config.kind == WORDPIECE:
        tokenizer = _train_wordpiece(lines, config)
    else:
        tokenizer = _train_bpe(lines, config)
    _warn_if_short(tokenizer.vocab_size, config.vocab_size, paths)
    return tokenizer


def _warn_if_short(got: int, asked: int, paths: list[Path]) -> None:
    """sentencepiece (hard_vocab_limit=False) and `tokenizers` stop when the corpus has no more pieces
    to learn: the vocabulary comes out smaller than asked, which they do not report. A usable tokenizer
    still, so a warning rather than an error; it says the sizes and what to change."""
    if got >= asked:
        return
    names = ", ".join(str(p) for p in paths)
    log.warning(
        "vocab_size=%d was asked but %s gave only %d tokens (it holds no more distinct pieces); "
        "train on a larger corpus, or ask for vocab_size=%d to make the size explicit",
        asked,
        names,
        got,
        got,
    )


class LineReader:
    """The lines of several files, read lazily; a line that is not UTF-8 stops it with file:line.

    Trainers call it from native code, which turns exceptions into their own; `error` keeps ours.
    """

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.error: DataError | None = None
        self.texts = 0

    def __iter__(self) -> Iterator[str]:
        for path in self.paths:
            with open(path, "rb") as fh:
                for number, raw in enumerate(fh, 1):
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as err:
                        self.error = DataError(
                            f"{path}:{number}: not UTF-8 (byte {raw[err.start]:#04x} at column {err.start + 1}); "
                            f"convert the file, e.g. `iconv -f latin1 -t utf-8 {path.name} > fixed.txt`"
                        )
                        raise self.error from None
                    if line.strip():
                        self.texts += 1
                    yield line.rstrip("\r\n")

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error
        if self.texts == 0:
            names = ", ".join(str(p) for p in self.paths)
            raise DataError(f"{names}: no text to train on (the files are empty); pass files with text")


def _check_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise DataError("no input files to train on; pass at least one text file")
    paths = [shipped(user_path(p)) for p in inputs]
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: no such file; pass an existing UTF-8 text file")
        if not path.is_file():
            raise DataError(f"{path}: not a file; pass UTF-8 text files (one or more lines of text each)")
    return paths


def _train_sentencepiece(lines: LineReader, config: TokenizerConfig) -> Tokenizer:
    import sentencepiece as spm

    model = io.BytesIO()
    specials = DEFAULT_SPECIALS[SENTENCEPIECE]
    pieces = config.vocab_size - config.extra_ids
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            model_type="unigram",
            vocab_size=pieces,
            hard_vocab_limit=False,  # a small corpus gives a smaller vocabulary rather than an error
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            pad_piece=specials.pad,
            eos_piece=specials.eos,
            unk_piece=specials.unk,
            normalization_rule_name="nmt_nfkc",
            character_coverage=config.character_coverage,
            input_sentence_size=config.max_sentences,
            max_sentencepiece_length=config.max_piece_length,
            max_sentence_length=1 << 16,  # bytes; the default 4192 silently drops paragraph-long lines
            shuffle_input_sentence=True,
            byte_fallback=False,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as err:
        lines.raise_if_failed()
        raise _sentencepiece_error(err, config) from None
    lines.raise_if_failed()
    return sentencepiece_tokenizer(model.getvalue(), {"extra_ids": config.extra_ids}, where="trained model")


def _sentencepiece_error(err: RuntimeError, config: TokenizerConfig) -> DataError:
    text = str(err)
    needed = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", text)
    if needed:
        least = int(needed.group(2)) + config.extra_ids
        return DataError(
            f"vocab_size={config.vocab_size} is too small for this corpus: its characters alone need "
            f"{least} tokens with the {config.extra_ids} sentinels; raise --vocab-size to at least "
            f"{least} (or lower character_coverage)"
        )
    return DataError(f"sentencepiece could not train on this corpus: {text.strip().splitlines()[0]}")


def _train_wordpiece(lines: LineReader, config: TokenizerConfig) -> Tokenizer:
    specials = [token for _, token in DEFAULT_SPECIALS[WORDPIECE].items()]  # ids 0..4 in this order
    # tokenizers' WordPiece trainer numbers the ##c pieces in hash-map order, and merge ties follow the
    # numbering, so two runs learn different vocabularies. A first pass finds the alphabet; the second
    # gets it, sorted, as fixed tokens after the specials, which makes training deterministic.
    alphabet = _wordpiece_vocab(lines, config, specials, vocab_size=1)
    fixed = sorted(set(alphabet) - set(specials), key=lambda t: (t.startswith("##"), t))
    vocab = _wordpiece_vocab(lines, config, specials + fixed, vocab_size=config.vocab_size)
    if len(vocab) > config.vocab_size:
        raise DataError(
            f"vocab_size={config.vocab_size} is too small for this corpus: its characters (each also in "
            f"its ## form) and the 5 special tokens need {len(vocab)}; raise --vocab-size to at least "
            f"{len(vocab)}"
        )
    options = {"do_lower_case": config.lowercase, "strip_accents": None}
    return wordpiece_tokenizer(vocab, options)


def _wordpiece_vocab(
    lines: LineReader, config: TokenizerConfig, fixed: list[str], vocab_size: int
) -> dict[str, int]:
    backend = Backend(models.WordPiece(unk_token=DEFAULT_SPECIALS[WORDPIECE].unk))
    backend.normalizer = normalizers.BertNormalizer(lowercase=config.lowercase, strip_accents=None)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=fixed,
        limit_alphabet=1000,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    _train_backend(backend, lines, trainer)
    return backend.get_vocab(with_added_tokens=False)


def _train_bpe(lines: LineReader, config: TokenizerConfig) -> Tokenizer:
    backend = Backend(models.BPE(continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size - 1,  # <|endoftext|> comes last, as GPT-2's 50256
        min_frequency=config.min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    _train_backend(backend, lines, trainer)
    vocab = backend.get_vocab(with_added_tokens=False)
    vocab[GPT2_EOT] = len(vocab)
    merges = json.loads(backend.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    return bpe_tokenizer(vocab, merges, {})


def _train_backend(backend: Backend, lines: LineReader, trainer: trainers.Trainer) -> None:
    try:
        backend.train_from_iterator(lines, trainer=trainer)
    except DataError:
        raise
    except Exception as err:
        lines.raise_if_failed()
        raise DataError(f"the tokenizers library could not train on this corpus: {err}") from None
    lines.raise_if_failed()


def _train(inputs: Sequence[str | Path], **config: Any) -> Tokenizer:
    """Tokenizer.train(inputs, kind=..., vocab_size=...): the keywords are TokenizerConfig's fields."""
    return train_tokenizer(inputs, TokenizerConfig.from_dict(config))


delegates.provide("tokenizer.train", _train)
