"""How one Unit of an experiment runs: `train` (t2t.experiments.run), `single_task` (one model per
task) or `self_training` (t2t.experiments.self_training's loop, each round trained and measured by the
one Trainer). `run_unit` is what the runner calls, in this process or in a worker."""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import torch

from t2t.experiments.run import Context, run_single_tasks, train_and_measure
from t2t.experiments.self_training import Example, SelfTrainingConfig, pseudo_label, self_train
from t2t.experiments.spec import Unit


def run_unit(unit_data: dict[str, Any], context_data: dict[str, Any]) -> dict[str, Any]:
    """Run one Unit (as a dict) in this process; the record of what it measured. A bug in a run
    becomes status "error" with its message (the experiment goes on and reports it)."""
    unit, ctx = Unit(**unit_data), Context(**context_data)
    threads = torch.get_num_threads()
    torch.set_num_threads(ctx.threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {
        "variant": unit.variant,
        "point": unit.point,
        "seed": unit.seed,
        "stage": unit.stage,
        "status": "ok",
        "metrics": {},
        "curves": {},
    }
    try:
        if unit.procedure == "self_training":
            run_self_training(unit, ctx, record)
        elif unit.procedure == "single_task":
            run_single_tasks(unit, ctx, record)
        else:
            train_and_measure(unit, ctx, record, Path(ctx.runs) / unit.key)
    except Exception as err:
        record["status"] = "error"
        record["reason"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc(limit=8)
    finally:
        torch.set_num_threads(threads)  # in-process runs leave the caller's setting as it was
    record["seconds"] = time.perf_counter() - start
    record["cpu_seconds"] = time.process_time() - cpu_start  # this process's CPU time: a calibration
    return record


def run_self_training(unit: Any, ctx: Any, record: dict[str, Any]) -> None:
    """A Unit with procedure self_training: data kind tasks with `fraction` the labelled share; the rest
    of each task's training split, targets hidden, is the unlabelled pool."""
    from t2t.data.stream import make_stream
    from t2t.data.tasks import Task
    from t2t.experiments import textdata
    from t2t.experiments.models import arch_of
    from t2t.experiments.run import Data, build_data, build_unit_model, task_metrics
    from t2t.experiments.spec import DataSpec, MeasureSpec

    spec = DataSpec.from_dict(unit.data)
    measure = MeasureSpec.from_dict(ctx.measure)
    config = SelfTrainingConfig.from_dict({"seed": unit.seed, **unit.options})
    arch = arch_of(unit.model)
    base = build_data(spec, arch, unit.seed, ctx.tokenizer, measure.eval_batches)
    tok = base.tokenizer
    tasks = {t.name: t for t in base.tasks}
    round_records: list[dict[str, Any]] = []

    def train(examples: list[Example], r: int) -> Any:
        by_task: dict[str, list[Example]] = {}
        for e in examples:
            by_task.setdefault(e["task"], []).append(e)
        subsets = [
            Task(
                name,
                lambda split, rows=rows, t=tasks[name]: rows if split == "train" else list(t.examples(split)),
                metrics=tasks[name].metrics,
                postprocess=tasks[name].postprocess,
                splits=tasks[name].splits,
            )
            for name, rows in by_task.items()
        ]
        source = textdata.mixture_of(subsets, spec.mixing, spec.cap, spec.temperature)
        stream = make_stream(
            source,
            tok,
            objective="text2text",
            arch=arch,
            batch_size=spec.batch_size,
            seed=unit.seed + 1000 * r,
            shuffle=spec.shuffle,
            pack=spec.pack,
            max_input_length=spec.max_input_length,
            max_target_length=spec.max_target_length,
        )
        data = Data(stream, base.probe, tokenizer=tok, tasks=base.tasks)
        sub = {"metrics": {}, "curves": {}, "status": "ok"}
        model = None if config.fresh or r == 0 else state["model"]
        if model is None:
            model = build_unit_model(unit, spec, tok, ctx.stages)
        model, _ = train_and_measure(
            unit, ctx, sub, Path(ctx.runs) / unit.key / f"round-{r}", data=data, model=model
        )
        state["model"] = model
        round_records.append(sub)
        return model

    state: dict[str, Any] = {}
    labelled = [{**e, "task": name} for name, t in tasks.items() for e in t.examples("train")]
    unlabelled = [{**e, "task": name} for name, rows in base.unlabelled.items() for e in rows]

    def label(model: Any, examples: list[Example]) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = [("", 0.0)] * len(examples)
        for name, task in tasks.items():
            index = [i for i, e in enumerate(examples) if e["task"] == name]
            if not index:
                continue
            choices = config.candidates or _closed_answers(task)
            answers = pseudo_label(
                model,
                tok,
                [examples[i] for i in index],
                candidates=choices,
                max_new_tokens=spec.max_target_length,
            )
            for i, answer in zip(index, answers, strict=True):
                out[i] = answer
        return out

    def evaluate(model: Any) -> dict[str, float]:  # the round's scores, measured by train_and_measure
        scores = {k: v for k, v in round_records[-1]["metrics"].items() if k.startswith("test/")}
        return scores or task_metrics(model, tok, base.tasks, spec.eval_split, spec.eval_limit, spec, "test")

    def same(example: Example, answer: str) -> bool:
        task = tasks[example["task"]]
        return task.postprocess(answer) == task.postprocess(example["targets"])

    result = self_train(train, label, labelled, unlabelled, config, evaluate=evaluate, same=same)
    final = round_records[-1]
    record["metrics"].update(final["metrics"])
    record["metrics"].update(result.rounds[-1])
    record["curves"].update(final["curves"])
    record["curves"]["rounds"] = result.rounds
    if any(r["status"] != "ok" for r in round_records):
        record["status"] = "diverged"
        record["reason"] = next(r.get("reason", "") for r in round_records if r["status"] != "ok")


def _closed_answers(task: Any, most: int = 20) -> list[str] | None:
    """A task's distinct training targets when there are at most `most` (a classification task)."""
    seen: list[str] = []
    for example in task.examples("train"):
        if example["targets"] not in seen:
            seen.append(example["targets"])
            if len(seen) > most:
                return None
    return seen
