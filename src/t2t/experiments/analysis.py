"""From the records of an experiment's runs to its tables, its one-sentence verdict and its plots.

Each analysis (the spec's `analysis:`) reads the measured quantities the runs recorded and states what
they show, with numbers; a difference between variants is called clear only when Welch's t-test over
the seeds says so at the 5% level (t2t.experiments.stats), so a verdict never claims an effect the
seeds do not support.

    lr_sweep       the largest learning rate that trains, and the divergence rate (post- vs pre-LN)
    curves         loss curves and gradient norms by block (residual connections)
    tradeoff       quality against cost, each variant against a baseline (norms, attention kinds)
    exposure_bias  task score and error rate by output position (scheduled sampling)
    transfer       pretrained vs from scratch by share of the fine-tuning data
    ranking        variants ranked by one score, with per-task scores (objectives, mixing, self-training)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2t.experiments import plots
from t2t.experiments.stats import compare, finite, fmt, mean, mean_std, std

Record = dict[str, Any]


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |"]
        lines.append("| " + " | ".join("---" if i == 0 else "---:" for i in range(len(self.header))) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def text(self) -> str:
        """The table for a terminal: columns padded to their widest cell."""
        cells = [self.header, *self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.header))]
        out = [self.title]
        for k, row in enumerate(cells):
            out.append(
                "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            )
            if k == 0:
                out.append("  ".join("-" * w for w in widths))
        return "\n".join(out)


@dataclass
class Plot:
    filename: str
    caption: str
    draw: Callable[[Path], None]


@dataclass
class Analysis:
    tables: list[Table]
    verdict: str
    findings: dict[str, Any] = field(default_factory=dict)
    plots: list[Plot] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ helpers
def runs(records: list[Record]) -> list[Record]:
    return [r for r in records if not r.get("stage")]


def variants(records: list[Record]) -> list[str]:
    out: list[str] = []
    for r in runs(records):
        if r["variant"] not in out:
            out.append(r["variant"])
    return out


def values(records: list[Record], metric: str) -> list[float]:
    return finite(r["metrics"].get(metric) for r in records if r["status"] == "ok")


def of(records: list[Record], variant: str, **point: Any) -> list[Record]:
    return [
        r
        for r in runs(records)
        if r["variant"] == variant and all(r["point"].get(k) == v for k, v in point.items())
    ]


def axis_values(records: list[Record], key: str) -> list[Any]:
    out: list[Any] = []
    for r in runs(records):
        if key in r["point"] and r["point"][key] not in out:
            out.append(r["point"][key])
    return out


def short(metric: str) -> str:
    return metric.replace("quickstart_", "").replace("test/", "").replace("unseen/", "unseen ")


def status_note(records: list[Record]) -> str:
    bad = [r for r in runs(records) if r["status"] != "ok"]
    if not bad:
        return ""
    counts = defaultdict(int)
    for r in bad:
        counts[r["status"]] += 1
    return (
        ", ".join(f"{n} run(s) {s}" for s, n in counts.items()) + " (left out of the means; see results.json)"
    )


def clear_word(result: dict[str, float], higher_is_better: bool) -> str:
    if not result["clear"]:
        return "no clear difference"
    better = result["diff"] > 0 if higher_is_better else result["diff"] < 0
    return "clearly better" if better else "clearly worse"


def lower_is_better(metric: str) -> bool:
    return any(word in metric for word in ("loss", "error", "seconds", "bytes", "diverged", "gap"))


def analyse(spec: Any, records: list[Record]) -> Analysis:
    kinds = {
        "lr_sweep": lr_sweep,
        "curves": curves,
        "tradeoff": tradeoff,
        "exposure_bias": exposure_bias,
        "transfer": transfer,
        "ranking": ranking,
    }
    out = kinds[spec.analysis](spec, records, dict(spec.options))
    out.plots.insert(
        0,
        Plot(
            "loss.png",
            "training loss of every variant (mean over seeds)",
            lambda p: plots.loss_curves(records, p),
        ),
    )
    return out


# ----------------------------------------------------------------------------------------- lr_sweep
def trained(record: Record, threshold: float) -> bool:
    loss = record["metrics"].get("final_loss", math.nan)
    return record["status"] == "ok" and math.isfinite(loss) and loss <= threshold


def lr_sweep(spec: Any, records: list[Record], options: dict[str, Any]) -> Analysis:
    """options: threshold (final loss at or below which a run trained), lr, depth, warmup (grid keys)."""
    threshold = float(options.get("threshold", 1.0))
    lr_key = options.get("lr", "train.optim.lr")
    depth_key = options.get("depth", "model.n_layers")
    warmup_key = options.get("warmup", "train.schedule.warmup_steps")
    names = variants(records)
    lrs = sorted(axis_values(records, lr_key))
    depths = axis_values(records, depth_key) or [None]
    warmups = axis_values(records, warmup_key) or [None]

    def point(depth: Any, warmup: Any, lr: Any = None) -> dict[str, Any]:
        p = {}
        if depth is not None:
            p[depth_key] = depth
        if warmup is not None:
            p[warmup_key] = warmup
        if lr is not None:
            p[lr_key] = lr
        return p

    largest: dict[tuple[str, Any, Any], float | None] = {}
    detail_rows = []
    for name in names:
        for warmup in warmups:
            for depth in depths:
                best = None
                for lr in lrs:
                    group = of(records, name, **point(depth, warmup, lr))
                    if not group:
                        continue
                    ok = sum(trained(r, threshold) for r in group)
                    diverged = sum(r["status"] == "diverged" for r in group)
                    if ok * 2 > len(group):
                        best = lr
                    detail_rows.append(
                        [
                            name,
                            str(depth),
                            str(warmup),
                            fmt(lr),
                            f"{ok}/{len(group)}",
                            f"{diverged}/{len(group)}",
                            mean_std([r["metrics"].get("final_loss") for r in group if r["status"] == "ok"]),
                        ]
                    )
                largest[(name, depth, warmup)] = best
    summary_rows, diverged_share = [], {}
    for warmup in warmups:
        for depth in depths:
            row = [f"{depth} layers" + (f", warm-up {warmup}" if warmup is not None else "")]
            for name in names:
                row.append(fmt(largest[(name, depth, warmup)]) if largest[(name, depth, warmup)] else "none")
            for name in names:
                group = [r for r in of(records, name, **point(depth, warmup))]
                share = sum(r["status"] == "diverged" for r in group) / max(len(group), 1)
                diverged_share[(name, depth, warmup)] = share
                row.append(f"{100 * share:.0f}%")
            summary_rows.append(row)
    header = ["setting", *[f"largest LR: {n}" for n in names], *[f"diverged: {n}" for n in names]]
    tables = [
        Table(
            f"Largest learning rate that trains (final loss <= {threshold:g} in more than half of the seeds) "
            "and share of runs diverged over the rate grid",
            header,
            summary_rows,
            status_note(records),
        ),
        Table(
            "Every grid point: runs that trained and diverged, final training loss (mean ± std over the "
            "runs that did not diverge)",
            ["variant", "layers", "warm-up", "LR", "trained", "diverged", "final loss"],
            detail_rows,
        ),
    ]
    verdict = _lr_verdict(names, depths, warmups, largest, diverged_share)
    findings = {
        "largest_lr": {f"{n}|{d}|{w}": v for (n, d, w), v in largest.items()},
        "diverged_share": {f"{n}|{d}|{w}": v for (n, d, w), v in diverged_share.items()},
    }
    figure = [
        Plot(
            "lr_sweep.png",
            "final training loss against the learning rate, one panel a depth (dashed: with warm-up)",
            lambda p: plots.lr_sweep(records, p, lr_key, depth_key, warmup_key, threshold),
        )
    ]
    return Analysis(tables, verdict, findings, figure)


def _lr_verdict(names, depths, warmups, largest, diverged_share) -> str:  # type: ignore[no-untyped-def]
    if len(names) < 2:
        return "one variant only: nothing to compare"
    a, b = names[0], names[1]
    parts = []
    wins_b = wins_a = 0
    for warmup in warmups:
        cells = []
        for depth in depths:
            la, lb = largest[(a, depth, warmup)], largest[(b, depth, warmup)]
            cells.append(f"{depth}: {fmt(la) if la else 'none'} vs {fmt(lb) if lb else 'none'}")
            va, vb = la or 0.0, lb or 0.0
            wins_b += vb > va
            wins_a += va > vb
        div_a = mean([diverged_share[(a, d, warmup)] for d in depths])
        div_b = mean([diverged_share[(b, d, warmup)] for d in depths])
        label = "without warm-up" if not warmup else f"with {warmup} warm-up steps"
        parts.append(
            f"{label}, largest LR that trains by depth ({a} vs {b}) {'; '.join(cells)}, "
            f"divergence rate {100 * div_a:.0f}% vs {100 * div_b:.0f}%"
        )
    settings = len(depths) * len(warmups)
    if wins_b and not wins_a:
        lead = f"{b} tolerates larger learning rates than {a} in {wins_b} of {settings} settings, never the reverse"
    elif wins_a and not wins_b:
        lead = f"{a} tolerates larger learning rates than {b} in {wins_a} of {settings} settings, never the reverse"
    elif not wins_a and not wins_b:
        lead = f"{a} and {b} train at the same largest rates in every setting: no difference shows"
    else:
        lead = f"Mixed: {b} trains at larger rates in {wins_b} settings, {a} in {wins_a}"
    return lead + ". " + "; ".join(p[0].upper() + p[1:] for p in parts) + "."


# ------------------------------------------------------------------------------------------- curves
def curves(spec: Any, records: list[Record], options: dict[str, Any]) -> Analysis:
    """options: baseline (variant), metric (quality; default final_loss), info (more metrics shown)."""
    names = variants(records)
    baseline = options.get("baseline", names[0])
    metric = options.get("metric", "final_loss")
    info = list(options.get("info", []))
    metric_list = [metric, "probe_loss", *info, "grad_bottom", "grad_top", "grad_ratio"]
    rows = []
    for name in names:
        group = of(records, name)
        diverged = sum(r["status"] == "diverged" for r in group)
        rows.append([name, *[mean_std(values(group, m)) for m in metric_list], f"{diverged}/{len(group)}"])
    tables = [
        Table(
            "Final loss and gradient norms by block at the end (the probe batch; bottom = first block, "
            "top = last), mean ± std over seeds",
            [
                "variant",
                short(metric),
                "probe loss",
                *[short(m) for m in info],
                "grad bottom",
                "grad top",
                "bottom / top",
                "diverged",
            ],
            rows,
            status_note(records),
        )
    ]
    base = values(of(records, baseline), metric)
    parts, findings = [], {}
    for name in names:
        if name == baseline:
            continue
        group = of(records, name)
        result = compare(values(group, metric), base)
        findings[name] = result
        word = clear_word(result, not lower_is_better(metric))
        ratio = mean(values(group, "grad_ratio"))
        diverged = sum(r["status"] == "diverged" for r in group)
        extra = f", {diverged}/{len(group)} runs diverged" if diverged else ""
        parts.append(
            f"{name}: {short(metric)} {fmt(mean(values(group, metric)))} vs {fmt(mean(base))} ({word}), "
            f"bottom/top gradient ratio {fmt(ratio)} vs {fmt(mean(values(of(records, baseline), 'grad_ratio')))}{extra}"
        )
    verdict = f"Against {baseline}: " + "; ".join(parts) + "." if parts else "one variant only"
    figures = [
        Plot(
            "grad_norms.png",
            "gradient norm of each block at the end of training (probe batch, mean over seeds)",
            lambda p: plots.grad_profile(records, p),
        ),
        Plot(
            "grad_norms_over_time.png",
            "gradient norm of the bottom and top block during training",
            lambda p: plots.grad_over_time(records, p),
        ),
    ]
    return Analysis(tables, verdict, findings, figures)


# ----------------------------------------------------------------------------------------- tradeoff
def tradeoff(spec: Any, records: list[Record], options: dict[str, Any]) -> Analysis:
    """options: baseline (variant), quality (metrics), cost (metrics), info (metrics shown only)."""
    names = variants(records)
    baseline = options.get("baseline", names[0])
    quality = list(options.get("quality", ["final_loss"]))
    cost = list(options.get("cost", []))
    info = list(options.get("info", []))
    columns = quality + cost + info
    rows = []
    base_group = of(records, baseline)
    for name in names:
        group = of(records, name)
        row = [name] + [mean_std(values(group, m)) for m in columns]
        for m in cost:
            ratio = (
                mean(values(group, m)) / mean(values(base_group, m))
                if mean(values(base_group, m))
                else math.nan
            )
            row.append(f"{100 * ratio:.0f}%" if math.isfinite(ratio) else "-")
        rows.append(row)
    header = ["variant", *[short(m) for m in columns], *[f"{short(m)} vs {baseline}" for m in cost]]
    tables = [
        Table(
            f"Quality and cost, mean ± std over seeds (baseline {baseline})",
            header,
            rows,
            status_note(records),
        )
    ]
    parts, findings = [], {}
    for name in names:
        if name == baseline:
            continue
        group = of(records, name)
        bits = []
        for m in quality:
            result = compare(values(group, m), values(base_group, m))
            findings[f"{name}|{m}"] = result
            bits.append(
                f"{short(m)} {fmt(mean(values(group, m)))} vs {fmt(mean(values(base_group, m)))} "
                f"({clear_word(result, not lower_is_better(m))})"
            )
        same_quality = all(not findings[f"{name}|{m}"]["clear"] for m in quality)
        costs = []
        for m in cost + [m for m in info if "per_s" in m]:
            result = compare(values(group, m), values(base_group, m))
            findings[f"{name}|{m}"] = result
            ratio = (
                mean(values(group, m)) / mean(values(base_group, m))
                if mean(values(base_group, m))
                else math.nan
            )
            word = (
                "no clear difference"
                if not result["clear"]
                else ("clearly higher" if result["diff"] > 0 else "clearly lower")
            )
            costs.append(f"{short(m)} {100 * ratio:.0f}% of {baseline}'s ({word})")
        lead = "matches" if same_quality else "differs from"
        parts.append(
            f"{name} {lead} {baseline} in quality ("
            + ", ".join(bits)
            + ")"
            + (", with " + ", ".join(costs) if costs else "")
        )
    verdict = "; ".join(parts) + "." if parts else "one variant only"
    figures = [
        Plot(
            "tradeoff.png",
            "each measured quantity by variant (mean ± std over seeds)",
            lambda p: plots.bars(records, p, columns),
        )
    ]
    return Analysis(tables, verdict, findings, figures)


# ----------------------------------------------------------------------------------- exposure_bias
def exposure_bias(spec: Any, records: list[Record], options: dict[str, Any]) -> Analysis:
    """options: baseline (teacher forcing's variant), metric (the task score)."""
    names = variants(records)
    baseline = options.get("baseline", names[0])
    metric = options.get("metric", "test/mean")
    extra = [m for m in options.get("metrics", []) if m != metric]
    columns = [metric, *extra, "error_rate_free", "error_rate_forced", "exposure_gap"]
    rows = [[name, *[mean_std(values(of(records, name), m)) for m in columns]] for name in names]
    tables = [
        Table(
            "Task score, and token error rate (%) over output positions: free-running (greedy, the model "
            "reads its own outputs) and teacher-forced (gold prefixes); the gap is exposure bias plus "
            "error propagation. Mean ± std over seeds",
            ["variant", *[short(c) for c in columns]],
            rows,
            status_note(records),
        ),
        _late_table(records, names),
    ]
    base = values(of(records, baseline), metric)
    parts, findings = [], {}
    best_name, best_value = baseline, mean(base)
    for name in names:
        if name == baseline:
            continue
        group = of(records, name)
        result = compare(values(group, metric), base)
        findings[name] = result
        gap = compare(values(group, "exposure_gap"), values(of(records, baseline), "exposure_gap"))
        findings[name + "|gap"] = gap
        parts.append(
            f"{name} {fmt(mean(values(group, metric)))} ({clear_word(result, True)}; free-running error "
            f"{fmt(mean(values(group, 'error_rate_free')))}% vs {fmt(mean(values(of(records, baseline), 'error_rate_free')))}%)"
        )
        if mean(values(group, metric)) > best_value:
            best_name, best_value = name, mean(values(group, metric))
    lead = (
        f"Teacher forcing ({baseline}) scores {short(metric)} {fmt(mean(base))} ± {fmt(std(base))}; "
        + "; ".join(parts)
    )
    if best_name == baseline:
        lead += ". No schedule beats plain teacher forcing here"
    elif findings.get(best_name, {}).get("clear"):
        lead += f". {best_name} is clearly better than teacher forcing"
    else:
        lead += f". The best schedule, {best_name}, is within the seeds' noise of teacher forcing"
    lead += _continuation_line(records, metric)
    figures = [
        Plot(
            "position_errors.png",
            "error rate by output position, free-running (solid) and teacher-forced (dotted)",
            lambda p: plots.position_errors(records, p),
        )
    ]
    return Analysis(tables, lead, findings, figures)


def _continuation_line(records: list[dict[str, Any]], metric: str) -> str:
    """The RL arm: after the same teacher-forced stage, equal extra steps of RL (tf_then_rl) against
    more teacher forcing (tf_then_tf), when the experiment has both."""
    rl, tf = values(of(records, "tf_then_rl"), metric), values(of(records, "tf_then_tf"), metric)
    if not rl or not tf:
        return "."
    result = compare(rl, tf)
    return (
        f". At equal extra steps after the same teacher-forced stage, RL (tf_then_rl) scores {fmt(mean(rl))} "
        f"against {fmt(mean(tf))} for more teacher forcing (tf_then_tf): {clear_word(result, True)}."
    )


def _late_table(records: list[Record], names: list[str]) -> Table:
    """Free-running error by position band (first, middle, last third of the longest outputs)."""
    rows = []
    for name in names:
        group = [
            r for r in of(records, name) if r["status"] == "ok" and r["curves"].get("position_error_free")
        ]
        if not group:
            continue
        width = max(len(r["curves"]["position_error_free"]) for r in group)
        bands = [(0, width // 3), (width // 3, 2 * width // 3), (2 * width // 3, width)]
        row = [name]
        for lo, hi in bands:
            per_seed = []
            for r in group:
                rates, counts = r["curves"]["position_error_free"], r["curves"]["position_count"]
                pairs = [
                    (rates[t], counts[t])
                    for t in range(lo, min(hi, len(rates)))
                    if counts[t] and rates[t] is not None
                ]
                total = sum(c for _, c in pairs)
                if total:
                    per_seed.append(100 * sum(x * c for x, c in pairs) / total)
            row.append(mean_std(per_seed))
        rows.append(row)
    return Table(
        "Free-running error rate (%) by output position band",
        ["variant", "first third", "middle third", "last third"],
        rows,
    )


# ----------------------------------------------------------------------------------------- transfer
def transfer(spec: Any, records: list[Record], options: dict[str, Any]) -> Analysis:
    """options: pretrained, scratch (variants), axis (grid key of the data share), metric (test score),
    unseen (the held-out-entity score)."""
    names = variants(records)
    pretrained = options.get("pretrained", names[-1])
    scratch = options.get("scratch", names[0])
    axis = options.get("axis", "data.fraction")
    metric = options.get("metric", "test/mean")
    unseen = options.get("unseen", "unseen/mean")
    shares = sorted(axis_values(records, axis))
    rows, per_task_rows, findings = [], [], {}
    wins, losses = [], []
    task_metrics = sorted(
        {
            k
            for r in runs(records)
            for k in r["metrics"]
            if k.startswith("test/") and k != metric and k.count("/") == 2
        },
    )
    firsts = _first_metrics(task_metrics)
    for share in shares:
        a = of(records, pretrained, **{axis: share})
        b = of(records, scratch, **{axis: share})
        row = [f"{100 * share:g}%"]
        for m in (metric, unseen):
            result = compare(values(a, m), values(b, m))
            findings[f"{share}|{m}"] = result
            row += [mean_std(values(b, m)), mean_std(values(a, m)), _signed(result)]
        rows.append(row)
        result = findings[f"{share}|{metric}"]
        if result["clear"]:
            (wins if result["diff"] > 0 else losses).append(share)
        for m in firsts:
            r = compare(values(a, m), values(b, m))
            per_task_rows.append(
                [f"{100 * share:g}%", short(m), mean_std(values(b, m)), mean_std(values(a, m)), _signed(r)]
            )
    tables = [
        Table(
            f"{short(metric)} (test split) and {short(unseen)} (left-out training examples whose answer never "
            f"occurs in the fine-tuning share) by share of each task's training data: {scratch} vs "
            f"{pretrained}, mean ± std over seeds; Δ = {pretrained} - {scratch}, * = clear (Welch, 5%)",
            [
                "share",
                f"test: {scratch}",
                f"test: {pretrained}",
                "Δ",
                f"unseen: {scratch}",
                f"unseen: {pretrained}",
                "Δ",
            ],
            rows,
            status_note(records),
        ),
        Table("Per task (test split)", ["share", "task / metric", scratch, pretrained, "Δ"], per_task_rows),
    ]
    fmt_shares = lambda xs: ", ".join(f"{100 * s:g}%" for s in xs)  # noqa: E731
    if wins and not losses:
        verdict = (
            f"Pretraining transfers: {pretrained} beats {scratch} clearly at {fmt_shares(wins)} of the data"
        )
    elif wins:
        verdict = f"Mixed: {pretrained} wins clearly at {fmt_shares(wins)} of the data and loses clearly at {fmt_shares(losses)}"
    elif losses:
        verdict = f"No transfer: {pretrained} is clearly worse than {scratch} at {fmt_shares(losses)} of the data and never clearly better"
    else:
        verdict = f"No clear transfer at any share this machine trained ({fmt_shares(shares)}): the differences are within the seeds' noise"
    detail = "; ".join(
        f"{100 * s:g}%: {_signed(findings[f'{s}|{metric}'])}" for s in shares if f"{s}|{metric}" in findings
    )
    verdict += f" ({short(metric)} Δ by share: {detail})."
    figures = [
        Plot(
            "transfer.png",
            "score against the share of fine-tuning data (log scale), test split and unseen answers",
            lambda p: plots.transfer(records, p, axis, [metric, unseen], [scratch, pretrained]),
        )
    ]
    return Analysis(tables, verdict, findings, figures)


def _signed(result: dict[str, float]) -> str:
    d = result["diff"]
    if not math.isfinite(d):
        return "-"
    return f"{d:+.1f}" + ("*" if result["clear"] else "")


def _first_metrics(keys: list[str]) -> list[str]:
    """`test/TASK/METRIC` keys, the first metric of each task only (the order the task names them is
    lost in a set, so: exact_match / accuracy first where a task has it)."""
    by_task: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        by_task[k.split("/")[1]].append(k)
    out = []
    for _, ks in sorted(by_task.items()):
        preferred = [k for k in ks if k.endswith(("/exact_match", "/accuracy"))]
        out.append((preferred or sorted(ks))[0])
    return out


# ------------------------------------------------------------------------------------------ ranking
def ranking(spec: Any, records: list[Record], options: dict[str, Any]) -> Analysis:
    """options: metric (the ranking score, default test/mean), baseline (variant compared with), tasks
    (show each task's first metric, default true), info (more metrics shown)."""
    names = variants(records)
    metric = options.get("metric", "test/mean")
    baseline = options.get("baseline")
    info = list(options.get("info", []))
    task_metrics = (
        _first_metrics(
            sorted(
                {
                    k
                    for r in runs(records)
                    for k in r["metrics"]
                    if k.startswith("test/") and k.count("/") == 2
                }
            )
        )
        if options.get("tasks", True)
        else []
    )
    columns = [metric, *task_metrics, *info]
    ordered = sorted(names, key=lambda n: -_nan_low(mean(values(of(records, n), metric))))
    rows = [[n, *[mean_std(values(of(records, n), m)) for m in columns]] for n in ordered]
    tables = [
        Table(
            f"Ranked by {short(metric)}, mean ± std over seeds",
            ["variant", *[short(c) for c in columns]],
            rows,
            status_note(records),
        )
    ]
    reference = baseline or (ordered[1] if len(ordered) > 1 else ordered[0])
    findings = {}
    parts = []
    for n in ordered:
        if n == reference:
            continue
        result = compare(values(of(records, n), metric), values(of(records, reference), metric))
        findings[n] = result
        parts.append(
            f"{n} {fmt(mean(values(of(records, n), metric)))} ({_signed(result)}, {clear_word(result, True)})"
        )
    top = ordered[0]
    verdict = (
        f"Ranking by {short(metric)}: " + " > ".join(ordered) + f"; against {reference} "
        f"({fmt(mean(values(of(records, reference), metric)))}): " + "; ".join(parts) + "."
    )
    if baseline and top != baseline and findings.get(top, {}).get("clear"):
        verdict = f"{top} is clearly best. " + verdict
    elif baseline and top != baseline:
        verdict = f"{top} ranks first but not clearly above {baseline}. " + verdict
    elif baseline:
        verdict = f"Nothing beats {baseline}. " + verdict
    figures = [
        Plot(
            "scores.png",
            "score of each task by variant (mean ± std over seeds)",
            lambda p: plots.bars(records, p, columns),
        )
    ]
    if any(r["curves"].get("rounds") for r in runs(records)):
        figures.append(
            Plot(
                "rounds.png",
                "self-training: score and pseudo-label accuracy by round",
                lambda p: plots.rounds(records, p, metric),
            )
        )
    return Analysis(tables, verdict, findings, figures)


def _nan_low(x: float) -> float:
    return x if math.isfinite(x) else -math.inf
