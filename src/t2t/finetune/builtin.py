"""Where the built-in fine-tuning data lives, and vocabularies trained on its pretraining corpus (the
recipes train their own small WordPiece / BPE / SentencePiece tokenizers: no download is needed)."""

from __future__ import annotations

from pathlib import Path

from t2t.errors import DataError
from t2t.tokenizer import Tokenizer
from t2t.utils import resources
from t2t.utils.io import atomic_write_text


def builtin_dir() -> Path:
    """data/builtin/finetune, shipped inside the package (t2t.utils.resources)."""
    directory = resources.builtin_dir() / "finetune"
    if not directory.is_dir():
        raise DataError(f"{directory}: the built-in fine-tuning data is missing; reinstall t2t")
    return directory


def builtin_path(relative: str | Path) -> Path:
    """A path under data/builtin/finetune when `relative` starts with `builtin:`, else the path itself."""
    text = str(relative)
    return (
        builtin_dir() / text.removeprefix("builtin:")
        if text.startswith("builtin:")
        else resources.shipped(text)
    )


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
