"""Token tagging as BERT did it on CoNLL-2003: read the column files, label the first sub-token of each
word (the other pieces get -100, so neither the loss nor the metric sees them), and read the model's
predictions back as one tag per word."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from t2t.errors import DataError
from t2t.finetune.readers import check_file
from t2t.model.loss import IGNORE_INDEX
from t2t.tokenizer import Tokenizer

DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class TaggedSentence:
    words: list[str]
    tags: list[str]
    where: str = ""


def read_conll(path: str | Path) -> list[TaggedSentence]:
    """Sentences of a CoNLL-2003 file: one `word ... tag` line per word (the tag is the last column),
    blank lines between sentences, -DOCSTART- lines skipped."""
    path = check_file(path)
    sentences: list[TaggedSentence] = []
    words: list[str] = []
    tags: list[str] = []
    start = 0
    with open(path, encoding="utf-8") as fh:
        try:
            for number, line in enumerate(fh, start=1):
                columns = line.split()
                if not columns or columns[0] == DOCSTART:
                    if words:
                        sentences.append(TaggedSentence(words, tags, f"{path}:{start}"))
                    words, tags = [], []
                    continue
                if len(columns) < 2:
                    raise DataError(f"{path}:{number}: {line.strip()!r} has no tag column; write `word TAG`")
                tag = columns[-1]
                if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                    raise DataError(f"{path}:{number}: tag {tag!r} is not BIO (O, B-TYPE or I-TYPE)")
                if not words:
                    start = number
                words.append(columns[0])
                tags.append(tag)
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
            ) from None
    if words:
        sentences.append(TaggedSentence(words, tags, f"{path}:{start}"))
    if not sentences:
        raise DataError(f"{path}: no tagged sentences; write one `word TAG` line per word")
    return sentences


def tag_names_of(sentences: Sequence[TaggedSentence]) -> list[str]:
    """O first, then the other tags sorted by type then B before I."""
    found = {t for s in sentences for t in s.tags} | {"O"}
    return ["O", *sorted(found - {"O"}, key=lambda t: (t[2:], t[:2]))]


def first_subtoken_features(
    tokenizer: Tokenizer, sentence: TaggedSentence, tag_ids: dict[str, int], max_length: int
) -> dict:
    """[CLS] pieces [SEP] with the word's tag on its first piece and -100 elsewhere; words that do not
    fit in max_length are cut (their predictions read as O). `word_starts` gives each word's first
    piece, or -1 for a word with no piece in the window (cut off, or nothing left after normalisation)."""
    if tokenizer.cls_id is None or tokenizer.sep_id is None:
        raise DataError("token tagging needs a BERT (WordPiece) tokenizer with [CLS] and [SEP]")
    encoding = tokenizer.backend.encode(sentence.words, is_pretokenized=True, add_special_tokens=False)
    pieces, word_ids = encoding.ids[: max_length - 2], encoding.word_ids[: max_length - 2]
    labels = [IGNORE_INDEX] * len(pieces)
    starts = [-1] * len(sentence.words)
    for position, word in enumerate(word_ids):
        if word is not None and starts[word] < 0:
            tag = sentence.tags[word]
            if tag not in tag_ids:
                raise DataError(f"{sentence.where}: tag {tag!r} is not one of {', '.join(tag_ids)}")
            labels[position] = tag_ids[tag]
            starts[word] = position + 1  # after [CLS]
    return {
        "input_ids": [tokenizer.cls_id, *pieces, tokenizer.sep_id],
        "token_type_ids": [0] * (len(pieces) + 2),
        "labels": [IGNORE_INDEX, *labels, IGNORE_INDEX],
        "word_starts": starts,
    }


def word_tags(logits: torch.Tensor, word_starts: Sequence[int], tag_names: Sequence[str]) -> list[str]:
    """One tag per word from the logits [T, tags] at each word's first piece; words with none get O."""
    best = logits.argmax(-1).tolist()
    return [tag_names[best[p]] if p >= 0 else "O" for p in word_starts]
