"""`t2t eval`: score a checkpoint on tasks with each task's metrics; write eval.json and eval.md."""

from __future__ import annotations

import argparse
import importlib
import sys

from t2t.cli.common import (
    add_device_argument,
    check_output_dir,
    example_epilog,
    positive_int,
    resolve_device,
    warnings_as_lines,
)
from t2t.cli.generate import add_precision_arguments, precision_options
from t2t.errors import T2TError

EXAMPLE = (
    "t2t quickstart --fast --out qs",
    "t2t eval --model qs/model --tasks quickstart_translate,quickstart_sentiment --limit 50 --out qs/eval",
    "t2t eval --model qs/model --tasks quickstart --split validation --limit 20 --num-beams 4",
    "printf 'tasks:\\n  - {name: numbers, template: translation, source: data/builtin/quickstart/translate}\\n' > tasks.yaml",
    "t2t eval --model qs/model --tasks tasks.yaml --limit 20",
)
YAML_SUFFIXES = (".yaml", ".yml")
# Modules whose `register_*_tasks()` adds built-in tasks to the registry, so their names work here.
BUILTIN_TASKS = (("t2t.quickstart.tasks", "register_quickstart_tasks"),)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint on tasks with their metrics; write eval.json and eval.md",
        description="Generate an answer for every example of each task's split (or the first --limit), "
        "apply the task's postprocessing to answers and targets, and score them with the task's metrics "
        "(accuracy, exact match, token F1, BLEU, chrF, ROUGE, entity F1, correlations). The table is "
        "printed and written, with a few examples per task, to OUT/eval.md; every score to OUT/eval.json.\n"
        "--tasks takes registered task or mixture names (the built-in quickstart_* tasks among them), data "
        "folders, and YAML files of task declarations (see docs/evaluation.md), separated by commas.",
        epilog=example_epilog(*EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory (model + tokenizer)")
    p.add_argument(
        "--tasks", required=True, metavar="NAME[,NAME]", help="tasks, mixtures or tasks.yaml files"
    )
    p.add_argument("--split", default="test", help="which split to score (test)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N", help="first N examples per task")
    p.add_argument("--out", default="eval", metavar="DIR", help="where eval.json and eval.md go (./eval)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="prompts per batch (32)")
    p.add_argument("--max-new-tokens", type=positive_int, default=64, help="longest answer in tokens (64)")
    p.add_argument("--num-beams", type=positive_int, default=1, help="beam search with N beams (1: greedy)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_argument(p)
    add_precision_arguments(p)
    p.set_defaults(handler=run)


def register_builtin_tasks() -> None:
    """Put the built-in tasks in the registry (a module not there yet is skipped)."""
    for module_name, function in BUILTIN_TASKS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        getattr(module, function)()


def task_names(spec: str) -> list[str]:
    """The task / mixture names of a --tasks value; YAML files are loaded and give their tasks."""
    from t2t.data import load_tasks_yaml

    names: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if item.endswith(YAML_SUFFIXES):
            names += [task.name for task in load_tasks_yaml(item, overwrite=True)]
        else:
            names.append(item)
    if not names:
        raise T2TError(f"--tasks {spec!r} names no task; give e.g. --tasks quickstart_translate")
    return names


def run(args: argparse.Namespace) -> int:
    from t2t.evaluate import evaluate, resolve_tasks
    from t2t.generation import load_pipeline

    register_builtin_tasks()
    out_dir = check_output_dir(args.out, "--out ")  # a bad --out or task name fails before the model loads
    tasks = resolve_tasks(task_names(args.tasks))
    pipe = load_pipeline(args.model, device=resolve_device(args.device), **precision_options(args))
    with warnings_as_lines("eval", every=False):  # a warning (prompts cut to fit) is one line, like an error
        report = evaluate(
            pipe.model,
            pipe.tokenizer,
            tasks,
            split=args.split,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            num_beams=args.num_beams,
            limit=args.limit,
            progress=not args.quiet,
        )
    report.model = str(args.model)
    out = report.save(out_dir)
    table = report.to_markdown().split("\n## ", 1)[0].rstrip()
    print(table)
    print(f"\nt2t eval: wrote {out / 'eval.json'} and {out / 'eval.md'}", file=sys.stderr)
    return 0
