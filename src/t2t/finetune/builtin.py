"""Where the built-in fine-tuning data lives, and vocabularies trained on its pretraining corpus (the
recipes train their own small WordPiece / BPE / SentencePiece tokenizers: no download is needed)."""

from __future__ import annotations

from pathlib import Path

from t2t.errors import DataError
from t2t.tokenizer import Tokenizer
from t2t.utils.io import atomic_write_text

# src/t2t/finetune/builtin.py -> the checkout's data/builtin/finetune
_CHECKOUT = Path(__file__).resolve().parents[3] / "data" / "builtin" / "finetune"


def builtin_dir() -> Path:
    """data/builtin/finetune of this checkout (or of the working directory, for an installed t2t)."""
    for candidate in (_CHECKOUT, Path.cwd() / "data" / "builtin" / "finetune"):
        if candidate.is_dir():
            return candidate
    raise DataError(f"{_CHECKOUT}: built-in fine-tuning data not found; run from a t2t checkout")


def builtin_path(relative: str | Path) -> Path:
    """A path under data/builtin/finetune when `relative` starts with `builtin:`, else the path itself."""
    text = str(relative)
    return builtin_dir() / text.removeprefix("builtin:") if text.startswith("builtin:") else Path(text)


def corpus_tokenizer(
    kind: str, vocab_size: int, *, lines: int | None = None, workdir: Path | None = None
) -> Tokenizer:
    """A `kind` tokenizer (wordpiece, bpe, sentencepiece) trained on the built-in corpus (its first
    `lines` lines when given). Deterministic: the same arguments give the same vocabulary."""
    corpus = builtin_dir() / "corpus" / "train.txt"
    options: dict = {"kind": kind, "vocab_size": vocab_size}
    if kind == "sentencepiece":
        options["extra_ids"] = 0
    if lines is None:
        return Tokenizer.train([corpus], **options)
    if workdir is None:
        raise DataError("corpus_tokenizer(lines=...) needs a workdir for the shortened corpus")
    with open(corpus, encoding="utf-8") as fh:
        text = "".join(line for _, line in zip(range(lines), fh))
    short = Path(workdir) / f"corpus-{lines}.txt"
    atomic_write_text(short, text)
    return Tokenizer.train([short], **options)
