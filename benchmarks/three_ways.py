"""Three ways to one task: the built-in sentiment task (SST-2-like) trained

1. text-to-text: an encoder-decoder (T5 layout) reads "sentiment: <sentence>" and writes the label word,
   scored by exact match of the generated text (SentencePiece vocabulary);
2. BERT head: an encoder with a linear head on the pooled [CLS] output (WordPiece);
3. GPT transformation: a decoder reading <start> sentence <extract>, linear head on the extract token
   plus the auxiliary LM loss (byte-level BPE);

each from scratch at a similar parameter count (d_model 128, d_ff 512, 4 heads; 2 encoder layers, 2
decoder layers, or 1 + 1), the same vocabulary size, steps, batch size and learning rate. Prints
accuracy, parameters and training time side by side.

    .venv/bin/python benchmarks/three_ways.py [--epochs 4] [--limit-train N] [--seed 0] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch

import t2t
from t2t.finetune import formats
from t2t.finetune.builtin import builtin_path, corpus_tokenizer
from t2t.finetune.collate import collate
from t2t.finetune.loop import fit, shuffled_batches, steps_for
from t2t.finetune.recipe import load_recipe
from t2t.finetune.run import finetune
from t2t.finetune.scoring import score
from t2t.generation import Pipeline

SHAPE = {"d_model": 128, "d_ff": 512, "n_heads": 4}


def text_to_text(args: argparse.Namespace, recipe) -> dict:  # type: ignore[no-untyped-def]
    """T5-style: the label is text the decoder writes after a task prefix."""
    torch.manual_seed(args.seed)
    tokenizer = corpus_tokenizer("sentencepiece", recipe.tokenizer_vocab_size)
    d = recipe.data
    train, names = formats.load_text_examples(builtin_path(d.train), d.text_field, None, d.label_field)
    test, _ = formats.load_text_examples(
        builtin_path(d.test), d.text_field, None, d.label_field, label_names=names
    )
    train = train[: args.limit_train] if args.limit_train else train

    def feature(e: formats.TextExample) -> dict:
        ids = tokenizer.encode(f"sentiment: {e.text}", max_length=recipe.max_length)
        return {"input_ids": ids, "labels": tokenizer.encode(names[int(e.label)])}

    config = t2t.preset(
        "t5-tiny",
        vocab_size=tokenizer.model_vocab_size,
        head_dim=None,
        n_encoder_layers=1,
        n_decoder_layers=1,
        relative_buckets=32,
        relative_max_distance=128,
        dropout=0.1,
        pad_id=tokenizer.pad_id,
        eos_id=tokenizer.eos_id,
        decoder_start_id=tokenizer.pad_id,
        **SHAPE,
    )
    model = t2t.build_model(config)
    features = [feature(e) for e in train]
    steps = steps_for(len(features), recipe.batch_size, recipe.epochs, None)
    stats = fit(
        model,
        shuffled_batches(features, recipe.batch_size, lambda f: collate(f, tokenizer.pad_id), args.seed),
        steps,
        learning_rate=recipe.learning_rate,
        warmup=recipe.warmup,
        weight_decay=recipe.weight_decay,
        device=args.device,
    )
    pipe = Pipeline(model, tokenizer, batch_size=64)
    room = max(len(tokenizer.encode(name)) for name in names)  # label pieces + end of sequence
    predictions = [p.strip() for p in pipe([f"sentiment: {e.text}" for e in test], max_new_tokens=room)]
    accuracy = score(["accuracy"], predictions, [names[int(e.label)] for e in test])["accuracy"]
    return {
        "accuracy": accuracy,
        "parameters": model.num_parameters(),
        "seconds": stats.seconds,
        "steps": steps,
    }


def head(args: argparse.Namespace, name: str) -> dict:
    overrides = [f"seed={args.seed}", f"epochs={args.epochs}", f"device={args.device}"]
    if args.limit_train:
        overrides.append(f"data.limit_train={args.limit_train}")
    result = finetune(load_recipe(name, overrides))
    return {
        "accuracy": result.scores["accuracy"],
        "parameters": result.parameters,
        "seconds": result.train_seconds,
        "steps": result.steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    recipe = load_recipe("bert-sentiment", [f"epochs={args.epochs}"])
    start = time.perf_counter()
    rows = [
        ("text-to-text (enc-dec + prefix)", text_to_text(args, recipe)),
        ("BERT head ([CLS] -> linear)", head(args, "bert-sentiment")),
        ("GPT transformation (extract token)", head(args, "gpt-sentiment")),
    ]
    print(
        f"\nbuilt-in sentiment: {recipe.data.train} -> {recipe.data.test}, {args.epochs:g} epochs, seed {args.seed}"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}\n")
    print("| approach | test accuracy | parameters | steps | training time |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in rows:
        print(
            f"| {name} | {r['accuracy']:.1f}% | {r['parameters']:,} | {r['steps']} | {r['seconds']:.1f} s |"
        )
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
