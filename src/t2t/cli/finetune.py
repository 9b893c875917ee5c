"""`t2t finetune --recipe NAME [key=value ...]`: a shortcut to `t2t train --config
configs/finetune/NAME.yaml` (BERT heads, GPT transformations, BERT / GPT pretraining) that prints the
recipe's scores at the end. The recipes are ordinary training configs; t2t 0.1 recipe files and keys
(learning_rate=, output_dir=, model=DIR, ...) are still read, with a warning naming the new key."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from t2t.cli.common import example_epilog

EXAMPLE = (
    "t2t finetune --list",
    "t2t finetune --recipe bert-sentiment epochs=1 data.limit_train=500",
    "t2t finetune --recipe bert-pretrain max_steps=20 run_dir=runs/bert-pretrain",
    "t2t finetune --recipe bert-qa model.preset=null model.checkpoint=runs/bert-pretrain max_steps=20 "
    "run_dir=runs/bert-qa",
    "cp configs/finetune/bert-sentiment.yaml my-recipe.yaml      # a recipe of your own, to edit",
    "t2t finetune --recipe my-recipe.yaml model.freeze_encoder=true max_steps=20 data.limit_eval=100 "
    "run_dir=runs/mine --json",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="train a fine-tuning or pretraining recipe and print its scores",
        description=__doc__,
        epilog=example_epilog(*EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recipe",
        nargs="+",
        metavar=("NAME", "key=value"),
        help="a recipe name (see --list) or a YAML file, then optional key=value overrides",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config keys, e.g. epochs=1 data.limit_train=200"
    )
    parser.add_argument("--list", action="store_true", help="list the built-in recipes")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar while training")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last")
    parser.add_argument(
        "--overwrite", action="store_true", help="start over in a RUN_DIR an earlier run used"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from t2t.errors import ConfigError
    from t2t.finetune.recipe import recipe_names
    from t2t.train import Trainer
    from t2t.train.recipes import load_recipe

    if args.list:
        for name in recipe_names():
            cfg = load_recipe(name)
            print(
                f"{name:20s} {cfg.data.objective:16s} {cfg.model.preset or cfg.model.checkpoint:10s} {cfg.data.train}"
            )
        return 0
    if not args.recipe:
        raise ConfigError("name a recipe: --recipe NAME (t2t finetune --list) or --recipe FILE.yaml")
    name, *overrides = args.recipe
    flags = [f"{key}=true" for key in ("resume", "overwrite") if getattr(args, key)]
    if args.quiet:
        flags.append("progress=false")
    cfg = load_recipe(
        name, [*args.overrides, *overrides, *flags]
    )  # overrides may stand before or after options
    trainer = Trainer(cfg)
    try:
        result = trainer.fit()
    except KeyboardInterrupt:
        print(
            f"t2t finetune: interrupted at step {trainer.step}; {trainer.checkpoints.kept()}", file=sys.stderr
        )
        return 130
    summary = _summary(name, cfg, trainer, result)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    scores = "  ".join(f"{k} {v:.2f}" for k, v in summary["scores"].items())
    print(f"{summary['recipe']}: {scores}")
    print(
        f"  {summary['parameters']:,} parameters ({summary['trainable_parameters']:,} trained), "
        f"{summary['steps']} steps in {summary['train_seconds']:.1f} s, {summary['train_examples']} train "
        f"examples; saved to {result.last_checkpoint}"
    )
    return 0


def _summary(name: str, cfg: Any, trainer: Any, result: Any) -> dict[str, Any]:
    from pathlib import Path

    from t2t.utils.io import atomic_write_text

    model = trainer.model
    summary = {
        "recipe": Path(name).stem,
        "objective": cfg.data.objective,
        "scores": result.final_metrics,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "steps": result.step,
        "train_seconds": round(result.elapsed, 2),
        "train_examples": trainer.objective.examples_per_epoch,
        "run_dir": str(result.run_dir),
        "checkpoint": str(result.last_checkpoint),
    }
    atomic_write_text(Path(result.run_dir) / "results.json", json.dumps(summary, indent=2) + "\n")
    return summary
