"""Batch encoding and decoding speed of t2t's tokenizers against transformers' fast tokenizers built on the
same vocabulary files, in one process, interleaved A/B, medians of the repeats.

.venv/bin/python benchmarks/tokenizer_speed.py [--texts 20000] [--repeats 7]

The ratio is transformers' time / t2t's time (above 1: t2t is faster). Both run the same Rust library;
t2t calls its batch path without offsets (encode_batch_fast) and builds no BatchEncoding.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import transformers

from t2t.tokenizer import Tokenizer
from tokenizer_helpers import write_corpus

SIZES = {"sentencepiece": 2000, "wordpiece": 2000, "bpe": 2000}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(ours: Callable[[], object], theirs: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of each, run alternately so that both see the same machine load."""
    ours(), theirs()  # warm up
    a, b = [], []
    for _ in range(repeats):
        a.append(timed(ours))
        b.append(timed(theirs))
    return statistics.median(a), statistics.median(b)


def bench_kind(kind: str, size: int, corpus: Path, texts: list[str], directory: Path, repeats: int) -> int:
    """Print the encode and decode rows of one kind; returns the number of tokens in one pass."""
    tok = Tokenizer.train([corpus], kind=kind, vocab_size=size)
    tok.save_pretrained(directory)
    hf = transformers.AutoTokenizer.from_pretrained(directory)
    ids = tok.encode_batch(texts)
    assert ids == hf(texts)["input_ids"], f"{kind}: ids differ; run the parity tests"
    rows = [
        ("encode", lambda: tok.encode_batch(texts), lambda: hf(texts)["input_ids"]),
        ("decode", lambda: tok.decode_batch(ids), lambda: hf.batch_decode(ids, skip_special_tokens=True)),
    ]
    for op, ours, theirs in rows:
        a, b = compare(ours, theirs, repeats)
        print(f"{kind:<14} {op:<7} {a * 1e3:>9.1f} {b * 1e3:>9.1f} {b / a:>7.2f}")
    return sum(map(len, ids))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus(Path(tmp) / "corpus.txt", lines=args.texts, seed=1)
        texts = corpus.read_text(encoding="utf-8").splitlines()
        tokens = 0
        print(f"{len(texts)} texts; times are medians of {args.repeats} interleaved runs")
        print(f"{'kind':<14} {'op':<7} {'t2t ms':>9} {'hf ms':>9} {'hf/t2t':>7}")
        for kind, size in SIZES.items():
            tokens += bench_kind(kind, size, corpus, texts, Path(tmp) / kind, args.repeats)
        print(f"({tokens} tokens encoded per pass over the three kinds)")


if __name__ == "__main__":
    main()
