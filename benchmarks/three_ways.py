"""Three ways to one task: the built-in sentiment task (SST-2-like) trained

1. text-to-text: an encoder-decoder (T5 layout) reads "sentiment: <sentence>" and writes the label word,
   scored by exact match of the generated text (SentencePiece vocabulary);
2. BERT head: an encoder with a linear head on the pooled [CLS] output (WordPiece);
3. GPT transformation: a decoder reading <start> sentence <extract>, linear head on the extract token
   plus the auxiliary LM loss (byte-level BPE);

each from scratch at a similar parameter count (the bert-sentiment recipe's shape: d_model 128, d_ff 512,
4 heads; 2 encoder layers, 2 decoder layers, or 1 + 1), the same vocabulary size, steps, batch size and
learning rate. Prints accuracy, parameters and training time side by side. `key=value` arguments override
fields of both recipes (and so of the text-to-text run, which takes its settings from bert-sentiment).

    .venv/bin/python benchmarks/three_ways.py [--epochs 4] [--limit-train N] [--seed 0] [--device cpu]
        [key=value ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch

import t2t
from t2t.finetune import formats
from t2t.finetune.builtin import builtin_path, corpus_tokenizer
from t2t.finetune.collate import collate
from t2t.finetune.scoring import score
from t2t.generation import Pipeline
from t2t.train import TrainConfig, Trainer
from t2t.train.feature_stream import FeatureStream
from t2t.train.recipes import load_recipe

SHAPE_KEYS = ("d_model", "d_ff", "n_heads", "dropout")  # what the encoder-decoder takes from the recipe


def text_to_text(recipe: TrainConfig, run_dir: Path) -> dict:
    """T5-style: the label is text the decoder writes after a task prefix; trained by the same Trainer
    with the recipe's optimizer, schedule and steps, on a stream of the same examples."""
    torch.manual_seed(recipe.seed)
    tokenizer = corpus_tokenizer("sentencepiece", recipe.model.tokenizer_vocab_size or 2000)
    d = recipe.data
    train, names = formats.load_text_examples(builtin_path(d.train), d.text_field, None, d.label_field)
    test, _ = formats.load_text_examples(
        builtin_path(d.test), d.text_field, None, d.label_field, label_names=names
    )
    train = train[: d.limit_train] if d.limit_train else train
    test = test[: d.limit_eval] if d.limit_eval else test

    def feature(e: formats.TextExample) -> dict:
        ids = tokenizer.encode(f"sentiment: {e.text}", max_length=d.max_input_length)
        return {"input_ids": ids, "labels": tokenizer.encode(names[int(e.label)])}

    overrides = recipe.model.overrides
    shape = {k: overrides[k] for k in SHAPE_KEYS if k in overrides}
    config = t2t.preset(
        "t5-tiny",
        vocab_size=tokenizer.model_vocab_size,
        head_dim=None,
        n_encoder_layers=1,
        n_decoder_layers=1,
        relative_buckets=32,
        relative_max_distance=128,
        pad_id=tokenizer.pad_id,
        eos_id=tokenizer.eos_id,
        decoder_start_id=tokenizer.pad_id,
        **shape,
    )
    model = t2t.build_model(config)
    features = [feature(e) for e in train]
    stream = FeatureStream(features, d.batch_size, partial(collate, pad_id=tokenizer.pad_id), d.seed)
    cfg = recipe.replace(run_dir=str(run_dir), data={"batch_size": d.batch_size})
    trainer = Trainer(
        cfg.replace(max_steps=cfg.steps_for(len(features))),
        model=model,
        tokenizer=tokenizer,
        train_stream=stream,
    )
    result = trainer.fit()
    pipe = Pipeline(model.eval(), tokenizer, batch_size=recipe.eval.batch_size)
    room = max(len(tokenizer.encode(name)) for name in names)  # label pieces + end of sequence
    predictions = [p.strip() for p in pipe([f"sentiment: {e.text}" for e in test], max_new_tokens=room)]
    accuracy = score(["accuracy"], predictions, [names[int(e.label)] for e in test])["accuracy"]
    return {
        "accuracy": accuracy,
        "parameters": model.num_parameters(),
        "seconds": result.elapsed,
        "steps": result.step,
    }


def head(recipe: TrainConfig, run_dir: Path) -> dict:
    trainer = Trainer(recipe.replace(run_dir=str(run_dir)))
    result = trainer.fit()
    return {
        "accuracy": result.final_metrics["accuracy"],
        "parameters": trainer.model.num_parameters(),
        "seconds": result.elapsed,
        "steps": result.step,
    }


def main(argv: Sequence[str] | None = None) -> list[tuple[str, dict]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=float, default=None, help="default: bert-sentiment's")
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="fields of both recipes")
    args = parser.parse_args(argv)
    overrides = [f"seed={args.seed}", f"device={args.device}", "progress=false", "tensorboard=false"]
    overrides += [f"epochs={args.epochs}"] if args.epochs is not None else []
    overrides += [f"data.limit_train={args.limit_train}"] if args.limit_train else []
    overrides += args.overrides
    bert = load_recipe("bert-sentiment", overrides)
    gpt = load_recipe("gpt-sentiment", overrides)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        rows = [
            ("text-to-text (enc-dec + prefix)", text_to_text(bert, Path(runs) / "t2t")),
            ("BERT head ([CLS] -> linear)", head(bert, Path(runs) / "bert")),
            ("GPT transformation (extract token)", head(gpt, Path(runs) / "gpt")),
        ]
    print(
        f"\nbuilt-in sentiment: {bert.data.train} -> {bert.data.test}, {bert.epochs:g} epochs, seed {args.seed}"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}\n")
    print("| approach | test accuracy | parameters | steps | training time |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in rows:
        print(
            f"| {name} | {r['accuracy']:.1f}% | {r['parameters']:,} | {r['steps']} | {r['seconds']:.1f} s |"
        )
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")
    return rows


if __name__ == "__main__":
    main()
