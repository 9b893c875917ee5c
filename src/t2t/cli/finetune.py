"""`t2t finetune`: train a recipe of configs/finetune/ (BERT heads, GPT transformations, pretraining)
and print its scores."""

from __future__ import annotations

import argparse
import json
import sys

from t2t.cli.common import check_output_dir, example_epilog, resolve_device

EXAMPLE = (
    "t2t finetune --list",
    "t2t finetune --recipe bert-sentiment epochs=1 data.limit_train=500",
    "t2t finetune --recipe bert-pretrain max_steps=20 output_dir=runs/bert-pretrain",
    "t2t finetune --recipe bert-qa model=runs/bert-pretrain max_steps=20 output_dir=runs/bert-qa",
    "cp configs/finetune/bert-sentiment.yaml my-recipe.yaml      # a recipe of your own, to edit",
    "t2t finetune --recipe my-recipe.yaml freeze_encoder=true max_steps=20 data.limit_test=100 --json",
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
        "overrides", nargs="*", metavar="key=value", help="recipe fields, e.g. epochs=1 data.limit_train=200"
    )
    parser.add_argument("--list", action="store_true", help="list the built-in recipes")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no loss lines while training")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from t2t.errors import ConfigError
    from t2t.finetune.recipe import load_recipe, recipe_names
    from t2t.finetune.run import finetune

    if args.list:
        for name in recipe_names():
            recipe = load_recipe(name)
            print(f"{name:20s} {recipe.task:16s} {recipe.family:5s} {recipe.data.train}")
        return 0
    if not args.recipe:
        raise ConfigError("name a recipe: --recipe NAME (t2t finetune --list) or --recipe FILE.yaml")
    name, *overrides = args.recipe
    recipe = load_recipe(name, [*args.overrides, *overrides])  # overrides may stand before or after options
    resolve_device(recipe.device, option="device=")  # a typo or a missing GPU fails before training
    if recipe.output_dir:
        check_output_dir(recipe.output_dir, "output_dir=")

    def log(step: int, loss: float) -> None:
        if not args.quiet:
            print(f"step {step:6d}  loss {loss:.4f}", file=sys.stderr, flush=True)

    result = finetune(recipe, on_log=log)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    scores = "  ".join(f"{k} {v:.2f}" for k, v in result.scores.items())
    print(f"{result.recipe}: {scores}")
    print(
        f"  {result.parameters:,} parameters ({result.trainable_parameters:,} trained), {result.steps} steps "
        f"in {result.train_seconds:.1f} s, {result.train_examples} train / {result.test_examples} test"
    )
    if result.output_dir:
        print(f"  saved to {result.output_dir}")
    return 0
