"""run_experiment: every run of an experiment (stages first, then the variants), in parallel processes
when the budget says so, then the analysis: OUT/results.json, OUT/report.md and OUT/*.png."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from t2t.errors import T2TError
from t2t.experiments.analysis import Analysis, analyse
from t2t.experiments.procedures import run_unit
from t2t.experiments.run import Context
from t2t.experiments.spec import ExperimentSpec, Unit
from t2t.utils.io import atomic_write_text


@dataclass
class ExperimentResult:
    spec: ExperimentSpec
    records: list[dict[str, Any]]
    analysis: Analysis
    out: Path
    seconds: float
    report: str


def machine() -> str:
    """The CPU (or GPU) and core count, in words."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    device = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{device}, {platform.system()} {platform.release()}"


def run_experiment(
    spec: ExperimentSpec,
    out: str | Path,
    *,
    seeds: int | None = None,
    jobs: int | None = None,
    command: str = "",
    quick: bool = False,
    keep_checkpoints: bool = False,
    runs: str | Path | None = None,
    work: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> ExperimentResult:
    """Run every unit of `spec` and write report.md, results.json and the plots into `out`. Each run's
    directory (config, metrics.jsonl; checkpoints only of stages) goes under `runs` (default OUT/runs);
    `work` holds what experiments can share (the vocabulary, keyed by its settings; default RUNS/work)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(runs) if runs else out / "runs"
    seeds = seeds or spec.seeds
    jobs = jobs or spec.budget.jobs
    start = time.perf_counter()
    tokenizer = _vocabulary(spec, Path(work) if work else runs / "work")
    context = Context(
        runs=str(runs),
        measure=spec.measure.to_dict(),
        tokenizer=str(tokenizer) if tokenizer else None,
        threads=spec.budget.threads,
        keep_checkpoints=keep_checkpoints,
    )
    stage_units = spec.stage_units(seeds)
    units = spec.units(seeds)
    jobs = max(1, min(jobs, len(units)))
    total = len(stage_units) + len(units)
    log(
        f"t2t experiment {spec.name}: {total} runs ({len(stage_units)} pretraining, {len(units)} measured), "
        f"{seeds} seed(s), {jobs} at a time; budget {spec.budget.minutes:g} min alone on 2 cores"
    )
    records = _execute(stage_units, context, jobs, log, 0, total)
    for record, unit in zip(records, stage_units, strict=True):
        if record["status"] != "ok" or "checkpoint" not in record:
            raise T2TError(
                f"{unit.label} did not train ({record.get('reason', record['status'])}); the variants that start from it cannot run"
            )
        context.stages[f"{unit.variant}/{unit.seed}"] = record["checkpoint"]
    records += _execute(units, context, jobs, log, len(stage_units), total)
    seconds = time.perf_counter() - start
    analysis = analyse(spec, records)
    report = write_outputs(
        spec, records, analysis, out, seconds=seconds, seeds=seeds, jobs=jobs, command=command, quick=quick
    )
    return ExperimentResult(spec, records, analysis, out, seconds, report)


def reanalyse(out: str | Path) -> tuple[Analysis, str]:
    """Write OUT/report.md, results.json and the plots again from the records in OUT/results.json with
    today's analysis, training nothing (after a change to an analysis, or to draw the plots again).
    The report keeps the date, machine and time of the runs."""
    out = Path(out)
    path = out / "results.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        spec = ExperimentSpec.from_dict(saved["spec"])
        records = saved["records"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise T2TError(f"{path}: not the results.json of an experiment ({err})") from None
    analysis = analyse(spec, records)
    report = write_outputs(
        spec,
        records,
        analysis,
        out,
        seconds=saved["seconds"],
        seeds=saved["seeds"],
        jobs=saved["jobs"],
        command=saved["command"],
        quick=saved["quick"],
        measured={key: saved[key] for key in ("date", "machine", "torch")},
    )
    return analysis, report


def _vocabulary(spec: ExperimentSpec, work: Path) -> Path | None:
    """The sentencepiece vocabulary of a text experiment, trained once (in this process)."""
    kinds = {u.data.get("kind") for u in spec.units(1) + spec.stage_units(1)}
    if kinds <= {"synthetic"}:
        return None
    keys = ("vocab_size", "max_piece_length", "vocab_lines")
    sizes = {tuple(u.data.get(k) for k in keys) for u in spec.units(1) + spec.stage_units(1)}
    if len(sizes) > 1:
        raise T2TError(f"{spec.name}: every run shares one vocabulary; data.{', '.join(keys)} vary ({sizes})")
    from t2t.experiments.textdata import train_vocabulary

    return train_vocabulary(work, *sizes.pop())


def _execute(
    units: list[Unit], context: Context, jobs: int, log: Callable[[str], None], done: int, total: int
) -> list[dict[str, Any]]:
    """Each unit's record, in the units' order; jobs > 1 runs them in worker processes (spawned, so
    each starts clean and sets its own thread count)."""
    if not units:
        return []
    ctx = asdict(context)
    records: list[dict[str, Any] | None] = [None] * len(units)
    if jobs <= 1:
        for i, unit in enumerate(units):
            records[i] = run_unit(asdict(unit), ctx)
            _progress(log, done + i + 1, total, unit, records[i])
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_unit, asdict(unit), ctx): i for i, unit in enumerate(units)}
            for k, future in enumerate(as_completed(futures), 1):
                i = futures[future]
                records[i] = future.result()
                _progress(log, done + k, total, units[i], records[i])
    return [r for r in records if r is not None]


def _progress(log: Callable[[str], None], k: int, total: int, unit: Unit, record: dict[str, Any]) -> None:
    loss = record["metrics"].get("final_loss")
    loss_text = f", final loss {loss:.4g}" if isinstance(loss, float) else ""
    why = f" ({record.get('reason', '')[:100]})" if record["status"] != "ok" else ""
    log(f"  [{k}/{total}] {unit.label}: {record['status']}{loss_text}, {record['seconds']:.1f}s{why}")


# --------------------------------------------------------------------------------------------- output
def write_outputs(
    spec: ExperimentSpec,
    records: list[dict[str, Any]],
    analysis: Analysis,
    out: Path,
    *,
    seconds: float,
    seeds: int,
    jobs: int,
    command: str,
    quick: bool,
    measured: dict[str, Any] | None = None,
) -> str:
    """results.json, the plots and report.md in `out`; returns the report's text. `measured`: the date,
    machine and torch of runs made earlier (a report written again from their records keeps them)."""
    import torch

    info = {
        "experiment": spec.name,
        "title": spec.title,
        "claim": spec.claim,
        "verdict": analysis.verdict,
        "command": command,
        "quick": quick,
        "seeds": seeds,
        "jobs": jobs,
        "threads": spec.budget.threads,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "torch": torch.__version__,
        "seconds": seconds,
        "budget_minutes": spec.budget.minutes,
        **(measured or {}),
    }
    results = {
        **info,
        "tables": [asdict(t) for t in analysis.tables],
        "findings": _jsonable(analysis.findings),
        "spec": _jsonable(spec.to_dict()),
        "records": _jsonable(records),
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, allow_nan=False) + "\n")
    drawn = []
    for figure in analysis.plots:
        try:
            figure.draw(out / figure.filename)
            drawn.append(figure)
        except T2TError:
            raise
        except Exception as err:
            drawn.append(type(figure)(figure.filename, f"{figure.caption} (not drawn: {err})", figure.draw))
    report = render_report(spec, analysis, info, drawn, records)
    atomic_write_text(out / "report.md", report)
    return report


def render_report(
    spec: ExperimentSpec,
    analysis: Analysis,
    info: dict[str, Any],
    figures: list[Any],
    records: list[dict[str, Any]],
) -> str:
    minutes = info["seconds"] / 60
    lines = [
        f"# {spec.title or spec.name}",
        "",
        f"**Claim.** {spec.claim}",
        "",
        f"**Verdict.** {analysis.verdict}",
        "",
        "## Results",
        "",
    ]
    for table in analysis.tables:
        lines += [table.markdown(), ""]
    lines += ["## Design", "", *design_lines(spec, info["seeds"]), ""]
    if figures:
        lines += ["## Plots", ""]
        for figure in figures:
            lines += [f"![{figure.caption}]({figure.filename})", "", f"*{figure.caption}*", ""]
    bad = [r for r in records if r["status"] == "error"]
    if bad:
        lines += ["## Runs that failed", ""]
        lines += [f"- {r['variant']} {r['point']} seed {r['seed']}: {r.get('reason', '')}" for r in bad]
        lines.append("")
    lines += [
        "## Reproduce",
        "",
        "```",
        info["command"] or f"t2t experiment {spec.name} --seeds {info['seeds']}",
        "```",
        "",
        f"Measured {info['date']} on {info['machine']}, torch {info['torch']}; {info['jobs']} run(s) at a time, "
        f"{info['threads']} thread(s) each; {minutes:.1f} min in all (budget {spec.budget.minutes:g} min alone)."
        + (" This is the `--quick` version: too small to support any verdict." if info["quick"] else ""),
        "",
    ]
    return "\n".join(lines)


def design_lines(spec: ExperimentSpec, seeds: int) -> list[str]:
    data = spec.data
    if data.kind == "synthetic":
        what = f"synthetic `{data.task}` of {data.min_length}-{data.max_length} symbols over {data.vocab - 3} symbols"
    elif data.kind == "tasks":
        what = f"the built-in tasks {', '.join(t.replace('quickstart_', '') for t in data.tasks)} ({data.mixing} mixing"
        what += f", {100 * data.fraction:g}% of each training split)" if data.fraction < 1 else ")"
        what += f"; a {data.vocab_size}-token sentencepiece vocabulary"
    else:
        what = f"the built-in corpus ({data.corpus}), objective {data.objective}"
    model = ", ".join(f"{k}={v}" for k, v in spec.model.items())
    train = ", ".join(f"{k}={v}" for k, v in spec.train.items())
    lines = [
        f"- Data: {what}; batches of {data.batch_size}{' packed rows' if data.pack else ''}.",
        f"- Model: {model}.",
        f"- Training (the one Trainer): {train}.",
        f"- Measured: {describe_measure(spec.measure)}.",
        "- Variants: " + "; ".join(_variant_text(v) for v in spec.variants) + ".",
    ]
    lines += _data_lines(spec)
    if spec.grid:
        lines.append(
            "- Grid (crossed with every variant): "
            + "; ".join(f"{k} in {v}" for k, v in spec.grid.items())
            + "."
        )
    for name, stage in spec.stages.items():
        lines.append(
            f"- Stage `{name}` (once per seed, variants with init: {name} start from it): "
            f"data {stage.data}, training {stage.train}" + (f". {stage.note}" if stage.note else ".")
        )
    lines.append(
        f"- Seeds: {seeds} per setting; a difference is called clear when Welch's t-test over the seeds gives p < 0.05."
    )
    lines += [f"- {note}" for note in spec.notes]
    return lines


def _data_lines(spec: ExperimentSpec) -> list[str]:
    """Tasks data: each task's training examples, and each variant's mixing rates."""
    if spec.data.kind != "tasks":
        return []
    from t2t.data.mixtures import mixing_rates
    from t2t.experiments.spec import DataSpec, merged
    from t2t.experiments.textdata import tasks_named

    sizes = {t.name: t.num_examples("train") for t in tasks_named(spec.data.tasks)}
    short = lambda name: name.replace("quickstart_", "")  # noqa: E731
    lines = [
        "- Training examples per task (100%): "
        + ", ".join(f"{short(k)} {v:,}" for k, v in sizes.items())
        + "."
    ]
    if len(sizes) > 1:
        rates = []
        for variant in spec.variants:
            data = DataSpec.from_dict(merged(spec.data.to_dict(), variant.data))
            if variant.procedure == "single_task":
                continue
            r = mixing_rates(sizes, rate=data.mixing, cap=data.cap, temperature=data.temperature)
            rates.append(f"`{variant.name}` " + ", ".join(f"{short(k)} {100 * v:.1f}%" for k, v in r.items()))
        lines.append("- Mixing rates: " + "; ".join(dict.fromkeys(rates)) + ".")
    return lines


def describe_measure(m: Any) -> str:
    parts = [
        "the training loss of every step",
        "the loss of a fixed held-out probe batch"
        + (f" every {m.every} steps" if m.every else " at the end"),
    ]
    if m.grad_norms:
        parts.append("the gradient norm of every block on the probe batch at each probe")
    if m.watchdog:
        parts.append(
            f"a watchdog that stops a run whose probe loss passes {m.watchdog:g}x its initial value (diverged)"
        )
    if m.sequence_scores:
        parts.append("greedy exact match and token accuracy on held-out sequences")
    if m.task_scores:
        parts.append("each task's metrics on the held-out split (t2t.evaluate, greedy)")
    if m.position_errors:
        parts.append("the error rate by output position, free-running and teacher-forced")
    if m.eval_loss:
        parts.append(f"the validation loss ({m.eval_batches} batches)")
    if m.step_time:
        parts.append("the median seconds per training step")
    if m.norm_time:
        parts.append("the seconds of the norm layer alone")
    if m.kv_cache:
        parts.append(f"the KV-cache bytes for {m.kv_cache['batch_size']} x {m.kv_cache['length']} tokens")
    if m.decode:
        parts.append(
            f"greedy decoding speed ({m.decode['batch_size']} rows, {m.decode['new_tokens']} tokens after "
            f"{m.decode['prompt_length']})"
        )
    return "; ".join(parts)


def _variant_text(variant: Any) -> str:
    bits = []
    for section in ("model", "train", "data"):
        if getattr(variant, section):
            bits.append(f"{section} {getattr(variant, section)}")
    if variant.init:
        bits.append(f"starts from stage {variant.init}")
    if variant.procedure != "train":
        bits.append(f"procedure {variant.procedure} {variant.options}")
    return f"`{variant.name}`" + (f" ({', '.join(bits)})" if bits else "")


def _jsonable(value: Any) -> Any:
    """NaN and infinity become None (strict JSON)."""
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
