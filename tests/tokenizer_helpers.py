"""Small corpora and trained tokenizers for the tokenizer tests (trained once per test session)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

SIZES = {"sentencepiece": 400, "wordpiece": 400, "bpe": 500}  # vocabularies the tests train
VOCAB_FILES = {  # what a published model has of each kind
    "sentencepiece": ["spiece.model"],
    "wordpiece": ["vocab.txt"],
    "bpe": ["vocab.json", "merges.txt"],
}
HF_FAST_CLASSES = {
    "sentencepiece": "T5TokenizerFast",
    "wordpiece": "BertTokenizerFast",
    "bpe": "GPT2TokenizerFast",
}

# Words with accents, capitals, digits, punctuation and a few non-Latin scripts, so that every kind has
# to learn something about each sample family in the parity tests.
_WORD_TEXT = (
    "the quick brown fox jumps over a lazy dog while data flows from text to text and every model learns "
    "to translate English to German house Haus happy glücklich summarize question answer context reasoning "
    "café naïve résumé déjà vu über Straße niño año façade coöperate Zürich São Paulo Łódź "
    "東京 日本語 данные текст 123 42 3.14 1,000 2024-01-01 100% $5 e-mail don't it's I'm we've you're "
    "Hello World ! ? , . ; : ( ) [ ] { } \" ' - _ / @ # &"
)
_WORDS = _WORD_TEXT.split()


_SYLLABLE_TEXT = "ka to ri mu se na lo pe qui ber stra ung ment tion ing ed ly ver sch ein zu"
_SYLLABLES = _SYLLABLE_TEXT.split()


def write_corpus(path: Path, lines: int = 2500, seed: int = 0) -> Path:
    """Real words mixed with made-up ones (syllable strings), enough for a few hundred pieces."""
    rng = random.Random(seed)
    made_up = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(600)]
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(lines):
            words = [rng.choice(_WORDS if rng.random() < 0.6 else made_up) for _ in range(rng.randint(3, 18))]
            fh.write(" ".join(words) + "\n")
    return path


# Texts the parity tests compare on: unicode, accents, whitespace runs, newlines, tabs, numbers,
# sentinels next to words and punctuation, special-token strings, unknown characters, empty text.
SAMPLES = [
    "",
    " ",
    "\t",
    "\n\n",
    "Hello  world",
    "  leading and trailing spaces  ",
    "a  b   c    d",
    "line one\nline two\ttabbed\r\nwindows end",
    "café naïve résumé déjà vu",
    "e\u0301 combining accent and precomposed é",
    "Straße ÜBER Zürich Łódź",
    "東京 日本語 данные",
    "emoji 🙂 and unseen ✓ ♞",
    "ﬁ ligature, full-width ＡＢＣ１２３",
    "numbers 42 3.14 1,000 2024-01-01 100% $5",
    "don't I'm it's we've you're",
    "(parens) [brackets] {braces} @user #tag a/b",
    "word<extra_id_0>word",
    "translate English to German: <extra_id_0> house <extra_id_1>.",
    "<extra_id_0> at the start",
    "at the end <extra_id_99>",
    "punct!<extra_id_2>?<extra_id_3>,",
    "spaced <extra_id_4>  <extra_id_5>  out",
    "<pad> </s> <unk> [CLS] [SEP] [MASK] [PAD] [UNK] <|endoftext|>",
    "UPPER lower MiXeD",
]


def compare_with_hf(ours, theirs, samples=SAMPLES) -> dict[str, list[str]]:
    """Every difference between a t2t tokenizer and a transformers one over `samples`: under "ids",
    encode with and without special tokens and the batch path; under "decode", decoding t2t's ids with
    and without skipping special tokens and the batch path. Empty lists: they agree."""
    ids, decoded = [], []
    for text in samples:
        for add in (True, False):
            mine, hf = (
                ours.encode(text, add_special_tokens=add),
                theirs(text, add_special_tokens=add)["input_ids"],
            )
            if mine != hf:
                ids.append(f"encode({text!r}, add_special_tokens={add}): {mine} != {hf}")
        encoded = ours.encode(text)
        for skip in (True, False):
            mine, hf = (
                ours.decode(encoded, skip_special_tokens=skip),
                theirs.decode(encoded, skip_special_tokens=skip),
            )
            if mine != hf:
                decoded.append(f"decode({text!r}, skip_special_tokens={skip}): {mine!r} != {hf!r}")
    batch = theirs(list(samples))["input_ids"]
    if ours.encode_batch(list(samples)) != batch:
        ids.append("encode_batch differs")
    if ours.decode_batch(batch) != theirs.batch_decode(batch, skip_special_tokens=True):
        decoded.append("decode_batch differs")
    return {"ids": ids, "decode": decoded}


def checks_per_kind(samples=SAMPLES) -> int:
    """How many comparisons compare_with_hf makes under each key (two per text and the batch path)."""
    return 2 * len(samples) + 1


def hf_class(kind: str):
    """transformers' fast tokenizer class for a kind (imported here, so data tests need not load it)."""
    import transformers

    return getattr(transformers, HF_FAST_CLASSES[kind])


def copy_files(source: Path, target: Path, *names: str) -> Path:
    """A new directory `target` holding only the named files of `source`."""
    target.mkdir()
    for name in names:
        shutil.copy(source / name, target / name)
    return target


def vocab_only(kind: str, directory: Path, target: Path) -> Path:
    """A directory with nothing but the kind's vocabulary file(s), as published models have them."""
    return copy_files(directory, target, *VOCAB_FILES[kind])
