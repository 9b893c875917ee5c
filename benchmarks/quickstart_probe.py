"""Does the quickstart's model read unseen entities or remember training ones? (issue 22's probes)

    .venv/bin/python benchmarks/quickstart_probe.py                                  # the mixture, plan as is
    .venv/bin/python benchmarks/quickstart_probe.py --task question --steps 1000 \\
        --plan '{"finetune_pack": false, "finetune_batch_size": 32}'
    .venv/bin/python benchmarks/quickstart_probe.py --plan '{"vocab_size": 1000, "max_piece_length": 4}'

Trains the full plan's model from scratch (no pretraining) on the quickstart mixture or on one of its
tasks for --steps steps, with plan fields overridden by --plan (JSON), then prints the exact match on the
first --limit training items and the first --limit test items of every task trained, with a few answers
beside the gold ones: memorised entities show as a high training score beside a low test score, and as
test answers that are training words. One thread; a few minutes a run on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from t2t.data import get_task
from t2t.generation import Pipeline
from t2t.quickstart import run as quickstart
from t2t.quickstart.plan import PLANS
from t2t.quickstart.tasks import QUICKSTART_TASKS, register_quickstart_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--task", default="mixture", help="mixture, or a task: translate, question, ...")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--plan", default="{}", help="JSON of QuickstartPlan fields to override")
    parser.add_argument("--limit", type=int, default=100, help="items scored per split and task")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    plan = dataclasses.replace(PLANS["full"], finetune_steps=args.steps, **json.loads(args.plan))
    register_quickstart_tasks()
    tasks = [get_task(name) for name in QUICKSTART_TASKS]
    source = "quickstart" if args.task == "mixture" else f"quickstart_{args.task}"
    scored = tasks if args.task == "mixture" else [get_task(source)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        tokenizer = quickstart._train_tokenizer(plan, tasks, Path(work) / "work")
        torch.manual_seed(args.seed)
        model = quickstart._build_model(plan, tokenizer)
        stream = quickstart.finetune_stream(plan, tokenizer, source, args.seed)
        schedule = {"name": plan.finetune_schedule, "lr": plan.finetune_lr, "steps": args.steps}
        quickstart._fit(plan, model, tokenizer, stream, Path(work) / "run", schedule, args.seed, "cpu", False)
    pipe = Pipeline(model, tokenizer)
    print(f"{source}, {args.steps} steps, plan overrides {args.plan}: {time.perf_counter() - start:.0f} s")
    for task in scored:
        for split in ("train", "test"):
            items = [example for _, example in zip(range(args.limit), task.examples(split))]
            answers = pipe([e["inputs"] for e in items], max_new_tokens=plan.max_target_length)
            right = sum(a.strip() == e["targets"].strip() for a, e in zip(answers, items))
            shown = "; ".join(f"{a!r} (gold {e['targets']!r})" for a, e in zip(answers[:3], items))
            print(f"{task.name:22} {split:5} exact match {100 * right / len(items):5.1f}%  e.g. {shown}")


if __name__ == "__main__":
    main()
