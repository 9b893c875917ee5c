"""Span corruption statistics measured on its outputs: noise density and mean noise span length.

    .venv/bin/python benchmarks/span_stats.py [--samples 2000] [--seed 0]     # about 20 s

For each setting, `span_corruption` runs on many random token sequences and the statistics are read off
what it returns, not off the mask: the spans are the sentinels in the inputs, the noise tokens are the
targets less their sentinels and EOS, and every output is spliced back to check that it gives the
original sequence, starts with kept text and ends with noise. "T5's counts" is what T5's rounding
implies for the same sequences (round(L x density) noise tokens in round(noise / mean) spans each): at a
fixed length the measurement equals it exactly, and the gap to the setting is rounding, not sampling.
The last row goes through `make_stream` (a sentencepiece tokenizer, documents cut into chunks of
span_corruption_lengths(512) = 568 tokens, batches), read back from the batches.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from t2t.data import Task, make_stream
from t2t.data.objectives import span_corruption, span_corruption_lengths
from t2t.tokenizer import Tokenizer
from tokenizer_helpers import write_corpus

SENTINEL, EOS = 32099, 1  # T5's <extra_id_0> and </s>; the random tokens come from [3, 32000)


def t5_counts(length: int, density: float, mean: float) -> tuple[int, int]:
    """(noise tokens, spans) T5's random_spans_noise_mask makes for `length` tokens."""
    noise = min(max(round(length * density), 1), length - 1)
    return noise, max(round(noise / mean), 1)


class Tally:
    """Noise tokens, spans and tokens read from span corruption outputs, against T5's counts."""

    def __init__(self, density: float, mean: float, is_sentinel: Callable[[int], bool]) -> None:
        self.density_setting, self.mean_setting, self.is_sentinel = density, mean, is_sentinel
        self.noise = self.spans = self.tokens = self.samples = self.failures = 0
        self.t5_noise = self.t5_spans = 0

    def add(self, original: list[int], inputs: list[int], targets: list[int]) -> None:
        sentinel = self.is_sentinel
        in_order = [t for t in inputs[:-1] if sentinel(t)]
        spans: dict[int, list[int]] = {}
        for token in targets[:-1]:
            if sentinel(token):
                current = spans.setdefault(token, [])
            else:
                current.append(token)  # targets start with a sentinel, or `current` is unbound: a failure
        restored = [x for t in inputs[:-1] for x in (spans[t] if sentinel(t) else [t])]
        ok = (
            inputs[-1] == targets[-1] == EOS
            and restored == original
            and list(spans) == in_order
            and not sentinel(inputs[0])  # starts with kept text ...
            and sentinel(inputs[-2])  # ... and ends with noise
        )
        self.failures += not ok
        self.noise += len(targets) - 1 - len(spans)
        self.spans += len(in_order)
        self.tokens += len(original)
        self.samples += 1
        noise, count = t5_counts(len(original), self.density_setting, self.mean_setting)
        self.t5_noise += noise
        self.t5_spans += count

    def row(self, setting: str, lengths: str) -> str:
        density, mean = self.noise / self.tokens, self.noise / self.spans
        d, m = self.density_setting, self.mean_setting
        return (
            f"| {setting} | {lengths} | {self.samples:,} | {density:.4f} | {self.t5_noise / self.tokens:.4f} | "
            f"{d} | {(density - d) / d:+.2%} | {mean:.3f} | {self.t5_noise / self.t5_spans:.3f} | {m} | "
            f"{(mean - m) / m:+.2%} | {self.failures} |"
        )


def direct(density: float, mean: float, lengths: list[int], samples: int, seed: int) -> Tally:
    g = torch.Generator().manual_seed(seed)
    tally = Tally(density, mean, lambda t: SENTINEL - 100 < t <= SENTINEL)
    for i in range(samples):
        tokens = torch.randint(3, 32000, (lengths[i % len(lengths)],), generator=g).tolist()
        inputs, targets = span_corruption(
            tokens,
            noise_density=density,
            mean_noise_span_length=mean,
            sentinel_start_id=SENTINEL,
            eos_id=EOS,
            generator=g,
        )
        tally.add(tokens, inputs.tolist(), targets.tolist())
    return tally


def through_stream(seed: int) -> Tally:
    """T5's setting at max_input_length=512 through make_stream, one pass over documents of ~3,000 tokens."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus(Path(tmp) / "corpus.txt", lines=8000, seed=seed)
        tok = Tokenizer.train([corpus], kind="sentencepiece", vocab_size=2000)
        lines = corpus.read_text(encoding="utf-8").splitlines()
    docs = [" ".join(lines[i : i + 200]) for i in range(0, len(lines), 200)]
    chunk = span_corruption_lengths(512)[0]
    originals = [
        body[i : i + chunk]
        for body in tok.encode_batch(docs, add_special_tokens=False)
        for i in range(0, len(body), chunk)
    ]
    sentinels = {tok.sentinel_id(k) for k in range(tok.num_sentinels)}
    tally = Tally(0.15, 3.0, sentinels.__contains__)
    task = Task("span_stats", lambda split: [{"text": d} for d in docs])
    options = dict(objective="span_corruption", max_input_length=512, max_target_length=128, repeat=False)
    rows = (
        (ids[mask.bool()].tolist(), [t for t in labels.tolist() if t != -100])
        for batch in make_stream(task, tok, batch_size=32, seed=seed, **options)
        for ids, mask, labels in zip(
            batch["input_ids"], batch["attention_mask"], batch["labels"], strict=True
        )
    )
    for original, (inputs, targets) in zip(originals, rows, strict=True):
        tally.add(original, inputs, targets)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2000, help="sequences per setting")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    varied, short = list(range(64, 1025, 37)), list(range(64, 331, 7))
    settings = [
        (0.15, 3.0, [568], "568 (T5, inputs 512)"),
        (0.15, 3.0, [1137], "1137 (T5, inputs 1024)"),
        (0.15, 3.0, varied, "64-1024"),
        (0.15, 8.0, [568], "568"),
        (0.5, 3.0, [568], "568"),
        (0.5, 8.0, [568], "568"),
        (0.3, 1.0, short, "64-330"),  # longer makes more than T5's 100 sentinels (make_stream refuses)
    ]
    print(
        "| density, mean span | tokens | sequences | measured density | T5's counts | setting | error "
        "| measured mean span | T5's counts | setting | error | failures |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    failures = 0
    for density, mean, lengths, label in settings:
        tally = direct(density, mean, lengths, args.samples, args.seed)
        print(tally.row(f"{density}, {mean}", label))
        failures += tally.failures
    tally = through_stream(args.seed)
    print(tally.row("0.15, 3.0 via make_stream", "568 (last chunk of a document shorter)"))
    failures += tally.failures
    print(
        f"\n{time.perf_counter() - start:.1f} s; failures: outputs that do not splice back to the original, "
        "or do not start with kept text and end with noise"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
