"""`t2t train --config recipe.yaml [key=value ...]`: run a training recipe (see configs/ and docs/training.md).

Overrides use the config's dotted names (`optim.lr=3e-4 data.batch_size=16`); the whole config is
checked before anything is built, so a typo fails at once with the closest valid key.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from t2t.cli.common import example_epilog

TINY_RUN = (
    "t2t train --config configs/finetune_multitask.yaml model.checkpoint=null model.preset=t5-tiny "
    "model.tokenizer=runs/tokenizer max_steps=20 eval.every=10 eval.limit=20 run_dir=runs/multitask"
)
EXAMPLE = (
    "t2t tokenizer train --input data/builtin/finetune/corpus/train.txt --vocab-size 1000 --out runs/tokenizer",
    TINY_RUN + "   # a tiny T5 from scratch on the built-in mixture",
    TINY_RUN.replace("max_steps=20", "max_steps=40") + " --resume   # continue to step 40",
    "torchrun --nproc_per_node 2 -m t2t.cli.main train --config configs/pretrain_span_corruption.yaml",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model from a YAML recipe",
        description=(
            "Train a model as a recipe describes: model (preset, config or checkpoint), data (task or "
            "mixture and objective), optimizer, schedule, evaluation and checkpoints. Writes RUN_DIR/"
            "config.yaml, metrics.jsonl, tensorboard/ and checkpoints/ (step-N, last, best)."
        ),
        epilog=example_epilog(*EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="recipe YAML (a TrainConfig)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides, e.g. optim.lr=1e-4")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start over in a RUN_DIR an earlier run used (removes its checkpoints and logs)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from t2t.train import TrainConfig, Trainer
    from t2t.utils.yamlio import dump_yaml

    cfg = TrainConfig.load(args.config).with_overrides(args.overrides)
    if args.resume:
        cfg = cfg.replace(resume=True)
    if args.overwrite:
        cfg = cfg.replace(overwrite=True)
    if args.dry_run:
        print(dump_yaml(cfg.to_dict()), end="")
        return 0
    trainer = Trainer(cfg)
    try:
        result = trainer.fit()
    except KeyboardInterrupt:  # Ctrl-C: one line that says where to continue from, status 130
        if trainer.dist.is_main:
            print(
                f"t2t train: interrupted at step {trainer.step}; {_continue_hint(trainer)}", file=sys.stderr
            )
        return 130
    line = f"t2t train: {result.step} steps in {result.elapsed:.1f}s"
    if result.losses:
        line += f", last loss {result.losses[-1]:.4f}"
    if result.skipped_steps:
        line += f", {result.skipped_steps} skipped (non-finite)"
    if result.best_metric is not None:
        line += f", best {trainer.metric} {result.best_metric:.4f} ({result.best_checkpoint})"
    print(line + f"; last checkpoint {result.last_checkpoint}", file=sys.stderr)
    return 0


def _continue_hint(trainer: Any) -> str:
    from t2t.train.checkpoint import resolve_link

    last = resolve_link(trainer.ckpt_root, "last")
    return f"the last checkpoint is {last} (continue with --resume)" if last else "no checkpoint was written"
