"""Tokenizer parity with transformers, counted: for each kind and each directory layout t2t reads, how
many of the test samples give other ids or other decoded text than transformers' fast class built on
the same vocabulary files.

    .venv/bin/python benchmarks/tokenizer_parity.py      # about 20 s; prints a markdown table; exit 1 on a mismatch

Each kind (T5 sentencepiece, BERT WordPiece, GPT-2 byte-level BPE) is trained by t2t on the corpus of
tests/tokenizer_helpers.py and saved. The reference is T5TokenizerFast / BertTokenizerFast /
GPT2TokenizerFast loaded from the vocabulary files alone (spiece.model, vocab.txt, vocab.json +
merges.txt). t2t is compared with it as trained, and as loaded from each layout: the vocabulary files
alone, tokenizer.json (+ tokenizer_config.json) alone, the full directory t2t saves, and the directory
transformers saves; the last row of each kind is the other way round, transformers' AutoTokenizer on
t2t's directory. The samples are tests/tokenizer_helpers.SAMPLES; each text is checked encoded with and
without special tokens and decoded with and without skipping them, plus the batch paths.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import transformers

from t2t.tokenizer import Tokenizer
from tokenizer_helpers import (
    SAMPLES,
    SIZES,
    VOCAB_FILES,
    checks_per_kind,
    compare_with_hf,
    copy_files,
    hf_class,
    vocab_only,
    write_corpus,
)

NAMES = {"sentencepiece": "T5 sentencepiece", "wordpiece": "BERT WordPiece", "bpe": "GPT-2 byte-level BPE"}


def rows_for(kind: str, corpus: Path, root: Path) -> list[tuple[str, str, dict[str, list[str]]]]:
    tok = Tokenizer.train([corpus], kind=kind, vocab_size=SIZES[kind])
    saved = root / kind / "t2t"
    tok.save_pretrained(saved)
    vocab = vocab_only(kind, saved, root / kind / "vocab")
    reference = hf_class(kind).from_pretrained(vocab)
    hf_saved = root / kind / "hf"
    reference.save_pretrained(hf_saved)
    json_only = copy_files(saved, root / kind / "json", "tokenizer.json", "tokenizer_config.json")
    vocab_names = " + ".join(VOCAB_FILES[kind])
    rows = [
        ("trained (in memory)", tok),
        (f"{vocab_names} alone", Tokenizer.from_pretrained(vocab)),
        ("tokenizer.json + tokenizer_config.json", Tokenizer.from_pretrained(json_only)),
        ("t2t save_pretrained directory", Tokenizer.from_pretrained(saved)),
        ("transformers save_pretrained directory", Tokenizer.from_pretrained(hf_saved)),
    ]
    out = [(layout, "t2t", compare_with_hf(ours, reference)) for layout, ours in rows]
    auto = transformers.AutoTokenizer.from_pretrained(saved)  # the other way round
    out.append(("t2t save_pretrained directory", "AutoTokenizer", compare_with_hf(tok, auto)))
    return out


def main() -> int:
    start = time.perf_counter()
    checks = checks_per_kind(SAMPLES)
    print(
        f"transformers {transformers.__version__}; {len(SAMPLES)} sample texts; per row {checks} id checks and "
        f"{checks} decode checks (2 per text + the batch path)\n"
    )
    print("| kind | layout | read by | texts | id mismatches | decode mismatches |")
    print("| --- | --- | --- | --- | --- | --- |")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = write_corpus(root / "corpus.txt")
        for kind in SIZES:
            for layout, reader, problems in rows_for(kind, corpus, root):
                failed += len(problems["ids"]) + len(problems["decode"])
                print(
                    f"| {NAMES[kind]} | {layout} | {reader} | {len(SAMPLES)} | "
                    f"{len(problems['ids'])} / {checks} | {len(problems['decode'])} / {checks} |"
                )
                for line in problems["ids"] + problems["decode"]:
                    print(f"    {line}", file=sys.stderr)
    print(f"\n{time.perf_counter() - start:.1f} s after the imports")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
