"""Speed of the input pipeline (reading, tokenising, span corruption, packing, collating) with 0, 1 and 2
background data workers (t2t.data.workers), against what a t5-small training step consumes (issue 18).

    .venv/bin/python benchmarks/data_speed.py                 # span corruption at the t5-small shape
    .venv/bin/python benchmarks/data_speed.py --workers 0 1 2 4 --batches 400
    .venv/bin/python benchmarks/data_speed.py --objective prefix_lm
    .venv/bin/python benchmarks/data_speed.py --quick         # smoke test: few batches, tiny model

The corpus is the built-in prose corpus (data/builtin/finetune/corpus/train.txt) repeated endlessly,
tokenised by a sentencepiece vocabulary of 4000 pieces trained on it here (the quickstart's size).
Batches are those of t2t pretraining at benchmarks/train.py's t5-small shape: span corruption (noise
density 0.15, mean span 3), inputs 128 and targets 32 tokens, packed rows, 8 rows a batch.

1. The pipeline alone: each worker count in a fresh stream, a few batches to warm up, then --batches
   batches as fast as they come: rows/s and tokens/s (non-padding input + target tokens).
2. With training: t2t.preset("t5-small") trains on the stream (the Trainer's optimizer step, AdamW, 2
   threads) for --train-steps steps after 2 warm-up steps, at each worker count: the step time
   including the wait for data, and the rows/s and tokens/s the step consumes. With 0 workers the
   pipeline runs in the training thread between steps; with workers it runs beside them (on this 2-core
   CPU it shares the cores with the step's own threads).

Every worker count makes the same batches (t2t.data.workers; tests/test_data_workers.py).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

THREADS = 2


def corpus_path() -> Path:
    from t2t.utils.resources import builtin_dir  # the package's built-in data

    return builtin_dir() / "finetune" / "corpus" / "train.txt"


def build_tokenizer(corpus: Path, work: Path, vocab: int):  # type: ignore[no-untyped-def]
    from t2t.tokenizer import TokenizerConfig, train_tokenizer

    return train_tokenizer([corpus], TokenizerConfig(vocab_size=vocab))


def make(corpus: Path, tokenizer, args, workers: int):  # type: ignore[no-untyped-def]
    from t2t.data import make_stream
    from t2t.data.workers import prefetch

    stream = make_stream(
        str(corpus),
        tokenizer,
        objective=args.objective,
        batch_size=args.batch_size,
        max_input_length=args.inputs,
        max_target_length=args.targets,
        pack=True,
        seed=0,
    )
    return prefetch(stream, workers)


def tokens_of(batch: dict[str, torch.Tensor]) -> int:
    return int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())


def pipeline_alone(corpus: Path, tokenizer, args, workers: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    stream = make(corpus, tokenizer, args, workers)
    for _ in range(5):
        next(stream)
    rows = tokens = 0
    start = time.perf_counter()
    for _ in range(args.batches):
        batch = next(stream)
        rows += batch["input_ids"].shape[0]
        tokens += tokens_of(batch)
    seconds = time.perf_counter() - start
    if hasattr(stream, "close"):
        stream.close()
    return rows / seconds, tokens / seconds


def with_training(corpus: Path, tokenizer, args, workers: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    import t2t
    from t2t.train import TrainConfig, Trainer

    torch.manual_seed(0)
    preset = "t5-tiny" if args.quick else "t5-small"
    model = t2t.build_model(t2t.preset(preset, vocab_size=tokenizer.model_vocab_size, dropout=0.1))
    stream = make(corpus, tokenizer, args, workers)
    cfg = TrainConfig.from_dict(
        {
            "run_dir": tempfile.mkdtemp(),
            "progress": False,
            "tensorboard": False,
            "optim": {"name": "adamw", "lr": 1e-4},
        }
    )
    trainer = Trainer(cfg, model=model, train_stream=iter(()))
    optimizer_step = trainer._setup()
    times, rows, tokens = [], 0, 0
    for i in range(2 + args.train_steps):
        start = time.perf_counter()
        batch = next(stream)  # the wait for data counts: it is what training sees
        optimizer_step([batch], i)
        if i >= 2:
            times.append(time.perf_counter() - start)
            rows += batch["input_ids"].shape[0]
            tokens += tokens_of(batch)
    if hasattr(stream, "close"):
        stream.close()
    total = sum(times)
    return statistics.median(times), rows / total, tokens / total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--objective", default="span_corruption", choices=["span_corruption", "prefix_lm"])
    parser.add_argument("--batches", type=int, default=None, help="timed batches of the pipeline alone (300)")
    parser.add_argument("--train-steps", type=int, default=None, help="timed training steps (5; 0: skip)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--inputs", type=int, default=128)
    parser.add_argument("--targets", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=4000)
    parser.add_argument("--quick", action="store_true", help="smoke test: few batches, a tiny model")
    args = parser.parse_args()
    args.batches = args.batches or (10 if args.quick else 300)
    args.train_steps = args.train_steps if args.train_steps is not None else (1 if args.quick else 5)
    torch.set_num_threads(THREADS)
    if args.quick:
        print("QUICK SMOKE RUN: few batches; the figures below mean nothing")
    corpus = corpus_path()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(corpus, Path(tmp), 1000 if args.quick else args.vocab)
    print(
        f"torch {torch.__version__}, {THREADS} threads; {args.objective}, batch {args.batch_size}, inputs "
        f"{args.inputs}, targets {args.targets}, packed; corpus {corpus.name} ({corpus.stat().st_size / 1e6:.1f} MB)"
    )
    print(f"{'workers':>7} {'rows/s':>9} {'tokens/s':>10}   (the pipeline alone, {args.batches} batches)")
    for workers in args.workers:
        rows, tokens = pipeline_alone(corpus, tokenizer, args, workers)
        print(f"{workers:>7} {rows:>9.0f} {tokens:>10.0f}", flush=True)
    if args.train_steps:
        model = "t5-tiny" if args.quick else "t5-small"
        print(
            f"{'workers':>7} {'step ms':>9} {'rows/s':>9} {'tokens/s':>10}   ({model} training on the stream)"
        )
        for workers in args.workers:
            step, rows, tokens = with_training(corpus, tokenizer, args, workers)
            print(f"{workers:>7} {step * 1e3:>9.0f} {rows:>9.1f} {tokens:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
