"""Small corpora and trained tokenizers for the tokenizer tests (trained once per test session)."""

from __future__ import annotations

import random
from pathlib import Path

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
