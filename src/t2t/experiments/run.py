"""One run of an experiment: build the model and the data of a Unit, train it with the one Trainer,
measure it, and return a plain record (JSON-ready) of what was measured.

The Trainer is used as it is: the probes (the loss of a fixed held-out batch, gradient norms by block,
a watchdog that stops an exploding run) go in as its `eval_fn`, called every `measure.every` steps; a
run the Trainer stops (TrainingDiverged: non-finite or dead steps in a row) or the watchdog stops is
recorded as diverged, never a crash.
"""

from __future__ import annotations

import itertools
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from t2t.errors import T2TError
from t2t.experiments import measures
from t2t.experiments.models import arch_of, model_config
from t2t.experiments.spec import DataSpec, MeasureSpec, Unit, merged
from t2t.experiments.synthetic import SyntheticStream, SyntheticTask, make_batch
from t2t.train.trainer import TrainingDiverged

PROBE_ROWS = 32


class RunExploded(TrainingDiverged):
    """The watchdog's stop: the probe loss rose above `measure.watchdog` x its value before training."""


@dataclass
class Context:
    """What every run of one experiment shares (plain data: it crosses into worker processes)."""

    runs: str  # where each run's directory goes (RUNS/VARIANT_POINT/seed-N)
    measure: dict[str, Any]
    tokenizer: str | None = None  # the vocabulary's directory (text data)
    stages: dict[str, str] = field(default_factory=dict)  # "stage/seed" -> checkpoint directory
    threads: int = 1
    keep_checkpoints: bool = False


# --------------------------------------------------------------------------------------------- data
@dataclass
class Data:
    """A run's data: the training stream, a fixed probe batch, and what the final measures score."""

    stream: Any
    probe: dict[str, torch.Tensor]
    tokenizer: Any = None
    synthetic: SyntheticTask | None = None
    tasks: list[Any] = field(default_factory=list)  # evaluation tasks (fraction applied to train only)
    unseen: list[Any] = field(default_factory=list)  # left-out training examples as tasks
    unlabelled: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # task -> left-out examples
    eval_batches: list[dict[str, torch.Tensor]] = field(default_factory=list)


def build_data(data: DataSpec, arch: str, seed: int, tokenizer_dir: str | None, eval_batches: int) -> Data:
    if data.kind == "synthetic":
        task = SyntheticTask(data.task, data.vocab, data.min_length, data.max_length)
        probe = make_batch(task.examples(PROBE_ROWS, seed=1_000), arch)
        return Data(SyntheticStream(task, data.batch_size, arch, seed=seed), probe, synthetic=task)
    from t2t.tokenizer import load_tokenizer

    if tokenizer_dir is None:
        raise T2TError("a text experiment needs its vocabulary (Context.tokenizer)")
    tokenizer = load_tokenizer(tokenizer_dir)
    if data.kind == "tasks":
        return _task_data(data, arch, seed, tokenizer)
    return _corpus_data(data, arch, seed, tokenizer, eval_batches)


def _task_data(data: DataSpec, arch: str, seed: int, tokenizer: Any) -> Data:
    from t2t.data.stream import make_stream
    from t2t.data.tasks import Task
    from t2t.experiments import textdata

    subsets, unseen, unlabelled = [], [], {}
    for task in textdata.tasks_named(data.tasks):
        sub, rest, left_out = textdata.subset_task(task, data.fraction, seed)
        subsets.append(sub)
        unlabelled[task.name] = rest
        if data.unseen_limit and left_out:
            unseen.append(textdata.unseen_task(task, left_out[: data.unseen_limit]))
    source = textdata.mixture_of(subsets, data.mixing, data.cap, data.temperature)
    options = dict(
        objective="text2text",
        arch=arch,
        max_input_length=data.max_input_length,
        max_target_length=data.max_target_length,
    )
    stream = make_stream(
        source,
        tokenizer,
        batch_size=data.batch_size,
        seed=seed,
        shuffle=data.shuffle,
        pack=data.pack,
        **options,
    )
    per_task = max(1, PROBE_ROWS // len(subsets))
    held = [e for t in subsets for e in itertools.islice(t.examples("validation"), per_task)]
    probe_task = Task("probe", lambda split: held, splits=("validation",))
    probe = next(
        iter(
            make_stream(
                probe_task, tokenizer, batch_size=len(held), split="validation", repeat=False, **options
            )
        )
    )
    return Data(stream, probe, tokenizer=tokenizer, tasks=subsets, unseen=unseen, unlabelled=unlabelled)


def _corpus_data(data: DataSpec, arch: str, seed: int, tokenizer: Any, eval_batches: int) -> Data:
    from t2t.experiments import textdata

    train_lines, validation_lines = textdata.split_lines(
        textdata.corpus_lines(data.corpus), data.validation_share
    )
    if arch == "encoder-decoder":

        def stream_of(lines: list[str], stream_seed: int) -> Any:
            return textdata.CorpusObjectiveStream(
                textdata.corpus_token_ids(lines, tokenizer),
                tokenizer,
                data.objective,
                batch_size=data.batch_size,
                input_length=data.max_input_length,
                seed=stream_seed,
                noise_density=data.noise_density,
                mean_noise_span_length=data.mean_noise_span_length,
            )

        stream = stream_of(train_lines, seed)
        held = stream_of(validation_lines, 9_999)
        batches = [held.batch(i) for i in range(eval_batches)]
    else:
        from t2t.data.stream import make_stream

        if data.objective != "causal_lm":
            raise T2TError(f"a decoder-only model pretrains with objective causal_lm, not {data.objective!r}")
        task = textdata.corpus_task(train_lines, validation_lines)
        options = dict(
            objective="causal_lm",
            arch=arch,
            batch_size=data.batch_size,
            max_input_length=data.max_input_length,
        )
        stream = make_stream(task, tokenizer, seed=seed, shuffle=data.shuffle, **options)
        held_stream = make_stream(task, tokenizer, split="validation", repeat=False, **options)
        batches = list(itertools.islice(held_stream, eval_batches))
    return Data(stream, batches[0], tokenizer=tokenizer, eval_batches=batches)


# -------------------------------------------------------------------------------------------- model
def build_unit_model(unit: Unit, data: DataSpec, tokenizer: Any, stages: dict[str, str]) -> Any:
    from t2t.experiments.surgery import set_residual
    from t2t.model.build import build_model

    config = model_config(unit.model, data, tokenizer)
    torch.manual_seed(unit.seed)
    model = build_model(config)
    if unit.init is not None:
        from t2t.hub import from_pretrained

        source = stages[f"{unit.init}/{unit.seed}"]
        model.load_state_dict(from_pretrained(source).state_dict())
    if unit.model.get("residual", "standard") != "standard":
        set_residual(model, unit.model["residual"], unit.model.get("residual_scale"))
    return model


# ------------------------------------------------------------------------------------------- probes
class Probes:
    """The Trainer's eval_fn: the probe batch's loss (and gradient norms by block) every measure.every
    steps, kept as curves; the watchdog stops a run whose probe loss explodes."""

    def __init__(self, probe: dict[str, torch.Tensor], measure: MeasureSpec, initial: float) -> None:
        self.probe, self.measure, self.initial = probe, measure, initial
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.grad_norms: list[list[float]] = []

    def __call__(self, model: Any, step: int) -> dict[str, float]:
        loss = measures.batch_loss(model, self.probe)
        self.steps.append(step)
        self.losses.append(loss)
        if self.measure.grad_norms:
            self.grad_norms.append(measures.grad_norms_by_layer(model, self.probe))
        limit = self.measure.watchdog
        if limit is not None and (not math.isfinite(loss) or loss > limit * self.initial):
            raise RunExploded(
                f"stopped at step {step}: the probe loss {loss:.4g} is above {limit:g} x its initial "
                f"{self.initial:.4g}"
            )
        return {"probe_loss": loss if math.isfinite(loss) else 1e30}


# ---------------------------------------------------------------------------------------------- run
def train_config(unit: Unit, measure: MeasureSpec, run_dir: Path) -> Any:
    from t2t.train.config import TrainConfig

    settings = merged(
        {"optim": {"name": "adamw", "lr": 1e-3}, "max_steps": 100},
        unit.train,
    )
    settings = merged(
        settings,
        {
            "run_dir": str(run_dir),
            "seed": unit.seed,
            "overwrite": True,
            "progress": False,
            "tensorboard": False,
            "log_every": 1 if measure.step_time else settings.get("log_every", 10),
            "eval": {"every": measure.every, "metric": "probe_loss", "mode": "min", "tasks": []},
            "checkpoint": {"save_best": False, "keep_last": 1, "format": "t2t", "every": 0},
        },
    )
    return TrainConfig.from_dict(settings)


def train_and_measure(
    unit: Unit,
    ctx: Context,
    record: dict[str, Any],
    run_dir: Path,
    *,
    data: Data | None = None,
    model: Any = None,
) -> tuple[Any, Data]:
    """Train the unit's model and fill `record` with its measures; returns (model, data)."""
    from t2t.train.trainer import Trainer

    measure = MeasureSpec.from_dict(ctx.measure)
    spec_data = DataSpec.from_dict(unit.data)
    arch = arch_of(unit.model)
    if data is None:
        data = build_data(spec_data, arch, unit.seed, ctx.tokenizer, measure.eval_batches)
    if model is None:
        model = build_unit_model(unit, spec_data, data.tokenizer, ctx.stages)
    record["metrics"]["parameters"] = float(sum(p.numel() for p in model.parameters()))
    model.eval()
    initial = measures.batch_loss(model, data.probe)
    model.train()
    probes = Probes(data.probe, measure, initial)
    config = train_config(unit, measure, run_dir)
    trainer = Trainer(config, model=model, tokenizer=data.tokenizer, train_stream=data.stream, eval_fn=probes)
    reason = None
    try:
        trainer.fit()
    except TrainingDiverged as err:
        reason = str(err)
    losses = list(trainer.losses)
    reason = reason or measures.loss_diverged(losses, initial)
    metrics = record["metrics"]
    metrics.update(
        initial_loss=initial,
        final_loss=measures.final_loss(losses),
        probe_loss=probes.losses[-1] if probes.losses else math.nan,
        diverged=1.0 if reason else 0.0,
        steps=float(trainer.step),
    )
    if reason:
        record["status"] = "diverged"
        record["reason"] = reason
    record["curves"].update(
        loss=[x if math.isfinite(x) else None for x in losses],
        probe_steps=probes.steps,
        probe_loss=[x if math.isfinite(x) else None for x in probes.losses],
    )
    if probes.grad_norms:
        record["curves"]["grad_norms"] = probes.grad_norms
        record["curves"]["blocks"] = [name for name, _ in measures.blocks(model)]
        metrics.update(_gradient_summary(probes.grad_norms[-1]))
    model.eval()
    if not reason:
        final_measures(model, data, spec_data, measure, record, run_dir)
    if measure.step_time:
        metrics["step_seconds"] = measures.step_seconds(run_dir)
    if measure.norm_time:
        metrics["norm_seconds"] = measures.norm_seconds(model.config)
    if unit.stage:
        record["checkpoint"] = str(run_dir / "checkpoints" / "last")
        metrics.update(_stage_tokens(data.stream, spec_data))
    elif not ctx.keep_checkpoints:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return model, data


def run_single_tasks(unit: Unit, ctx: Context, record: dict[str, Any]) -> None:
    """One model per task of data.tasks, each trained alone with the unit's settings; the record holds
    every task's scores (and test/mean over them), the mean final loss, and the slowest status."""
    from dataclasses import replace

    losses, firsts = [], []
    for name in unit.data["tasks"]:
        sub = {"metrics": {}, "curves": {}, "status": "ok"}
        alone = replace(unit, data={**unit.data, "tasks": [name]})
        train_and_measure(alone, ctx, sub, Path(ctx.runs) / unit.key / name)
        scores = {
            k: v
            for k, v in sub["metrics"].items()
            if k.startswith(("test/", "unseen/")) and k.count("/") == 2
        }
        record["metrics"].update(scores)
        firsts += [v for k, v in sub["metrics"].items() if k.startswith("test/") and k.count("/") == 2][:1]
        losses.append(sub["metrics"].get("final_loss", math.nan))
        record["curves"].setdefault("loss_by_task", {})[name] = sub["curves"].get("loss")
        if sub["status"] != "ok":
            record["status"], record["reason"] = sub["status"], f"{name}: {sub.get('reason', '')}"
    record["metrics"]["final_loss"] = sum(losses) / len(losses) if losses else math.nan
    if firsts:
        record["metrics"]["test/mean"] = sum(firsts) / len(firsts)


def _gradient_summary(norms: list[float]) -> dict[str, float]:
    """The last probe's gradient norms: bottom block, top block, and their ratio (bottom / top)."""
    if not norms:
        return {}
    bottom, top = norms[0], norms[-1]
    return {"grad_bottom": bottom, "grad_top": top, "grad_ratio": bottom / top if top > 0 else math.nan}


def _stage_tokens(stream: Any, data: DataSpec) -> dict[str, float]:
    """Tokens per batch of a pretraining stream (inputs and targets that are not padding), from its first
    batches: what "equal compute" compares."""
    if not hasattr(stream, "batch"):
        return {}
    inputs = targets = 0
    for i in range(5):
        batch = stream.batch(i)
        inputs += int(batch["attention_mask"].sum())
        targets += int((batch["labels"] != -100).sum())
    return {"input_tokens_per_batch": inputs / 5, "target_tokens_per_batch": targets / 5}


@torch.no_grad()
def final_measures(
    model: Any, data: Data, spec_data: DataSpec, measure: MeasureSpec, record: dict[str, Any], run_dir: Path
) -> None:
    metrics, curves = record["metrics"], record["curves"]
    if measure.sequence_scores or (measure.position_errors and data.synthetic is not None):
        predicted, targets, batch = synthetic_predictions(model, data.synthetic, spec_data.eval_examples)
        if measure.sequence_scores:
            metrics.update(measures.sequence_scores(predicted, targets))
        if measure.position_errors:
            _position_curves(model, predicted, targets, [batch], curves, metrics)
    if measure.task_scores and data.tasks:
        metrics.update(
            task_metrics(
                model,
                data.tokenizer,
                data.tasks,
                spec_data.eval_split,
                spec_data.eval_limit,
                spec_data,
                "test",
            )
        )
        if data.unseen:
            metrics.update(
                task_metrics(
                    model, data.tokenizer, data.unseen, "test", spec_data.unseen_limit, spec_data, "unseen"
                )
            )
    if measure.position_errors and data.tasks:
        predicted, targets, batches = task_predictions(model, data, spec_data)
        _position_curves(model, predicted, targets, batches, curves, metrics)
    if measure.eval_loss and data.eval_batches:
        from t2t.train.evaluation import stream_loss

        metrics["eval_loss"] = stream_loss(model, data.eval_batches, next(model.parameters()).device)
    if measure.kv_cache:
        metrics["kv_cache_bytes"] = float(
            measures.kv_cache_bytes(model, measure.kv_cache["batch_size"], measure.kv_cache["length"])
        )
    if measure.decode:
        metrics["decode_tokens_per_s"] = measures.decode_speed(model, **measure.decode)


def task_metrics(
    model: Any, tokenizer: Any, tasks: list[Any], split: str, limit: int | None, data: DataSpec, prefix: str
) -> dict[str, float]:
    """`PREFIX/TASK/METRIC` for every task (t2t.evaluate), and `PREFIX/mean`: the mean of each task's
    first metric."""
    from t2t.evaluate import evaluate

    report = evaluate(
        model,
        tokenizer,
        tasks,
        split=split,
        limit=limit,
        batch_size=64,
        max_new_tokens=data.max_target_length,
        progress=False,
    )
    out = {
        f"{prefix}/{task}/{name}": float(v)
        for task, scores in report.scores.items()
        for name, v in scores.items()
    }
    firsts = [float(next(iter(scores.values()))) for scores in report.scores.values() if scores]
    if firsts:
        out[f"{prefix}/mean"] = sum(firsts) / len(firsts)
    return out


def synthetic_predictions(
    model: Any, task: SyntheticTask | None, count: int
) -> tuple[list[list[int]], list[list[int]], dict[str, torch.Tensor]]:
    """Greedy answers to `count` held-out sequences (ids up to EOS), their targets (+ EOS), and the
    teacher-forcing batch of the same examples."""
    from t2t.experiments.synthetic import EOS, SEP
    from t2t.generation.search import generate

    assert task is not None
    examples = task.examples(count, seed=0)
    arch = model.config.arch
    targets = [[*y, EOS] for _, y in examples]
    new_tokens = task.max_length + 2
    predicted: list[list[int]] = []
    for begin in range(0, len(examples), 64):
        chunk = examples[begin : begin + 64]
        if arch == "decoder":
            prompts = [[*x, SEP] for x, _ in chunk]
            width = max(map(len, prompts))
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, p in enumerate(prompts):  # left padding, as decoder-only generation expects
                ids[i, width - len(p) :] = torch.tensor(p)
                mask[i, width - len(p) :] = 1
        else:
            width = max(len(x) for x, _ in chunk) + 1
            ids = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, (x, _) in enumerate(chunk):
                ids[i, : len(x) + 1] = torch.tensor([*x, EOS])
                mask[i, : len(x) + 1] = 1
        out = generate(model, ids, mask, max_new_tokens=new_tokens, return_dict_in_generate=True)
        predicted += [measures.cut_at_eos(row.tolist(), EOS) for row in out.new_tokens]
    return predicted, targets, make_batch(examples, arch)


def task_predictions(
    model: Any, data: Data, spec: DataSpec
) -> tuple[list[list[int]], list[list[int]], list[dict[str, torch.Tensor]]]:
    """Greedy answers (token ids up to EOS) to each task's evaluation examples, the target ids (+ EOS),
    and the teacher-forcing batches of the same examples."""
    from t2t.data.stream import make_stream
    from t2t.generation.search import generate
    from t2t.generation.text import pad_rows

    tok = data.tokenizer
    predicted: list[list[int]] = []
    targets: list[list[int]] = []
    batches = []
    for task in data.tasks:
        examples = list(itertools.islice(task.examples(spec.eval_split), spec.eval_limit))
        for begin in range(0, len(examples), 64):
            chunk = examples[begin : begin + 64]
            rows = [tok.encode(e["inputs"], max_length=spec.max_input_length) for e in chunk]
            ids, mask = pad_rows(rows, tok.pad_id, left=False, device=torch.device("cpu"))
            out = generate(
                model, ids, mask, max_new_tokens=spec.max_target_length, return_dict_in_generate=True
            )
            predicted += [measures.cut_at_eos(r.tolist(), tok.eos_id) for r in out.new_tokens]
            targets += [tok.encode(e["targets"], max_length=spec.max_target_length) for e in chunk]
        from t2t.data.tasks import Task

        held = Task(task.name, lambda split, examples=examples: examples, splits=(spec.eval_split,))
        batches += list(
            make_stream(
                held,
                tok,
                batch_size=64,
                split=spec.eval_split,
                repeat=False,
                max_input_length=spec.max_input_length,
                max_target_length=spec.max_target_length,
            )
        )
    return predicted, targets, batches


def _position_curves(
    model: Any,
    predicted: list[list[int]],
    targets: list[list[int]],
    batches: list[dict[str, torch.Tensor]],
    curves: dict[str, Any],
    metrics: dict[str, float],
) -> None:
    """Free-running and teacher-forced error rates by output position, and their means."""
    forced: list[list[int]] = []
    gold: list[list[int]] = []
    for batch in batches:
        forced += measures.teacher_forced_predictions(model, batch)
        gold += measures.label_rows(batch, model.config.arch)
    free_rates, counts = measures.position_errors(predicted, targets)
    forced_rates, _ = measures.position_errors(forced, gold)
    curves["position_error_free"] = free_rates
    curves["position_error_forced"] = forced_rates
    curves["position_count"] = counts
    metrics["error_rate_free"] = _weighted(free_rates, counts)
    metrics["error_rate_forced"] = _weighted(forced_rates, counts)
    metrics["exposure_gap"] = metrics["error_rate_free"] - metrics["error_rate_forced"]


def _weighted(rates: list[float], counts: list[int]) -> float:
    pairs = [(r, c) for r, c in zip(rates, counts) if c and math.isfinite(r)]
    total = sum(c for _, c in pairs)
    return 100.0 * sum(r * c for r, c in pairs) / total if total else math.nan
