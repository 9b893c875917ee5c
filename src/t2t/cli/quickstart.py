"""`t2t quickstart`: the whole text-to-text pipeline on built-in data, in one command."""

from __future__ import annotations

import argparse

from t2t.cli.common import (
    add_device_argument,
    check_output_dir,
    example_epilog,
    non_negative_int,
    resolve_device,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="train a tokenizer, pretrain and fine-tune a small T5 on built-in tasks, evaluate, answer prompts",
        description="Train a sentencepiece vocabulary on the built-in corpus, pretrain a small T5 with span "
        "corruption, fine-tune it on a five-task mixture (translate, sentiment, question, summarize, "
        "reasoning) and the same model without pretraining, evaluate both on held-out examples and print "
        "the table, answer a few prompts, and leave OUT/model for t2t generate and t2t eval. At most 15 "
        "minutes on a 2-core CPU; --fast takes about 2.",
        epilog=example_epilog("t2t quickstart --out runs/quickstart", "t2t quickstart --fast --out /tmp/qs"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="runs/quickstart", help="output directory (default: runs/quickstart)")
    p.add_argument(
        "--fast", action="store_true", help="a 2-minute version with a smaller model and fewer steps"
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from t2t.quickstart import run_quickstart

    device = resolve_device(args.device)
    check_output_dir(args.out, "--out ")  # a file or a read-only folder in the way fails now, not at the end
    run_quickstart(
        args.out, fast=args.fast, seed=args.seed, device=str(device), progress=not args.no_progress
    )
    return 0
