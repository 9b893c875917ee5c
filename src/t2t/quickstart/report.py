"""The quickstart's closing table: each task's held-out scores with and without pretraining, the time of
every stage, and the answers to a few prompts."""

from __future__ import annotations

from typing import Any

from t2t.quickstart.tasks import RULE_TARGET, RULE_TASKS


def render_report(report: Any) -> str:
    variants = list(report.scores)
    lines = [
        f"# t2t quickstart ({report.plan} plan, seed {report.seed}, {report.device}, "
        f"{report.parameters / 1e6:.2f}M parameters)",
        "",
        "| task | metric | " + " | ".join(variants) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in variants) + " |",
    ]
    first = report.scores[variants[0]] if variants else {}
    for task, metrics in first.items():
        mark = " (rule)" if task in RULE_TASKS else ""
        for metric in metrics:
            cells = [_cell(report.scores[v].get(task, {}).get(metric)) for v in variants]
            lines.append(f"| {task}{mark} | {metric} | " + " | ".join(cells) + " |")
    lines += ["", *target_lines(report.scores)]
    lines += ["", *transfer_lines(report.scores)]
    lines += ["", "| stage | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in report.stages.items()]
    lines += [f"| total | {report.total_seconds:.1f} |", ""]
    if report.answers:
        lines += ["Prompts answered by the pretrained + fine-tuned model:", ""]
        lines += [f"- `{prompt}` -> `{answer}`" for prompt, answer in report.answers]
        lines.append("")
    if report.model_dir:
        lines += [
            f"Model and tokenizer: {report.model_dir}",
            f'  t2t generate --model {report.model_dir} "reasoning: If it snows, the roof gets white. It '
            f'snows. What happens to the roof?"',
            f"  t2t eval --model {report.model_dir} --tasks quickstart_reasoning,quickstart_translate",
            "",
        ]
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


FULL_DATA = ("pretrained", "from scratch")  # the variants trained on all the data: the target's


def target_verdicts(scores: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, bool]]:
    """task -> variant -> whether its held-out exact match reaches RULE_TARGET (rule tasks, and the
    variants trained on all the data: the low-data arm is there to show transfer, not to meet it)."""
    variants = [v for v in scores if v in FULL_DATA]
    return {
        task: {v: scores[v].get(task, {}).get("exact_match", 0.0) >= RULE_TARGET for v in variants}
        for task in RULE_TASKS
        if any(task in scores[v] for v in variants)
    }


def target_lines(scores: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [
        f"Target: at least {RULE_TARGET:.0f} exact match on every rule task's test split, whose names, places, "
        "jobs, objects and properties never occur in training or pretraining text (unseen entities: the "
        "model must read them from the input):"
    ]
    for task, met in target_verdicts(scores).items():
        cells = [
            f"{v} {_cell(scores[v][task].get('exact_match'))} ({'met' if ok else 'missed'})"
            for v, ok in met.items()
        ]
        lines.append(f"- {task}: " + ", ".join(cells))
    return lines


TRANSFER_EVIDENCE = "docs/experiments/transfer/report.md"
OBJECTIVES_EVIDENCE = "docs/experiments/objectives/longer/report.md"


def transfer_lines(scores: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """What pretraining changed, per pair of variants trained alike ("pretrained" / "from scratch", and
    "pretrained, 10% of the data" / "from scratch, 10% of the data"): each task's first metric,
    pretrained minus from scratch, and their mean.

    One seed cannot tell a point or two from noise, so the lines say so and point to the experiments that
    measure transfer over seeds and data shares, instead of letting a single run stand as the verdict."""
    lines = []
    for variant in scores:
        if not variant.startswith("pretrained"):
            continue
        data = variant.removeprefix("pretrained").removeprefix(", ") or "all the data"
        scratch = scores.get("from scratch" + variant.removeprefix("pretrained"))
        if scratch is None:
            continue
        gains = {}
        for task, metrics in scores[variant].items():
            metric = next(iter(metrics), None)
            other = scratch.get(task, {}).get(metric)
            if metric is not None and other is not None:
                gains[task] = metrics[metric] - other
        if gains:
            mean = sum(gains.values()) / len(gains)
            cells = ", ".join(
                f"{task.removeprefix('quickstart_')} {gain:+.1f}" for task, gain in gains.items()
            )
            lines.append(f"- {data}: {cells}; mean {mean:+.1f}")
    if not lines:
        return []
    return [
        "Pretraining (pretrained minus from scratch, each task's first metric):",
        *lines,
        f"One seed: differences of a few points are within seed-to-seed noise; the transfer experiment "
        f"({TRANSFER_EVIDENCE}) and the objectives experiment ({OBJECTIVES_EVIDENCE}) measure pretraining "
        f"over 3 seeds.",
    ]
