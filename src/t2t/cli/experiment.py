"""`t2t experiment NAME`: run one experiment of the lab (configs/experiments/NAME.yaml) and write its
report; `t2t experiment --list` names them."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from t2t.cli.common import check_new_dir, example_epilog, int_at_least, warnings_as_lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="reproduce a claim of the T5 / BERT / GPT / Llama papers: run an experiment, write its report",
        description="Run an experiment of the lab (configs/experiments/NAME.yaml, or a YAML file of your own "
        "written like one): every variant and grid point with each seed through the one Trainer, then "
        "OUT/report.md (a table of mean ± std over seeds, the verdict, the command), OUT/results.json and "
        "PNG plots; the table is printed. Each full experiment takes at most 20 minutes alone on a 2-core "
        "CPU (`t2t experiment NAME --out DIR`); --quick is the tiny version the tests run, in seconds.",
        epilog=example_epilog(
            "t2t experiment --list",
            "t2t experiment residual --quick --out runs/residual-quick",
            "t2t experiment transfer --dry-run",
            "t2t experiment norm_position 'grid.model.n_layers=[2]' train.max_steps=20 --quick --out runs/np",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="an experiment name (see --list) or a YAML file")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides of the file, e.g. train.max_steps=50",
    )
    p.add_argument("--list", action="store_true", help="name every experiment with its claim and budget")
    p.add_argument(
        "--seeds", type=int_at_least(1, 100), default=None, help="seeds per setting (default: the file's, 3)"
    )
    p.add_argument("--quick", action="store_true", help="the tiny version (the file's quick: section)")
    p.add_argument(
        "--out",
        default=None,
        help="where report.md, results.json and the plots go (default runs/experiments/NAME)",
    )
    p.add_argument("--runs", default=None, help="where each run's directory goes (default OUT/runs)")
    p.add_argument(
        "--jobs",
        type=int_at_least(1, 64),
        default=None,
        help="runs at once (default: the file's budget.jobs)",
    )
    p.add_argument("--overwrite", action="store_true", help="write into an OUT that holds an earlier report")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.add_argument(
        "--reanalyse",
        action="store_true",
        help="write --out's report, results.json and plots again from its results.json (no training)",
    )
    p.add_argument("--keep-checkpoints", action="store_true", help="keep every run's final checkpoint")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from t2t.errors import ConfigError
    from t2t.experiments import list_experiments, load_spec, run_experiment

    if args.list:
        for name in list_experiments():
            spec = load_spec(name)
            runs = len(spec.units()) + len(spec.stage_units())
            print(f"{name:16} {spec.title} ({runs} runs, at most {spec.budget.minutes:g} min)")
            print(f"{'':16} claim: {spec.claim}")
        return 0
    if args.reanalyse:
        return _reanalyse(args)
    if not args.name:
        raise ConfigError("name an experiment (t2t experiment --list names them) or pass --list")
    spec = load_spec(args.name, quick=args.quick, overrides=args.overrides)
    seeds = args.seeds or spec.seeds
    if args.dry_run:
        for unit in spec.stage_units(seeds) + spec.units(seeds):
            print(unit.label)
        return 0
    out = args.out or f"runs/experiments/{spec.name}" + ("-quick" if args.quick else "")
    check_new_dir(out, "--out ", args.overwrite)
    command = ["t2t", "experiment", args.name, *args.overrides, "--seeds", str(seeds)]
    command += ["--quick"] * args.quick + ["--out", str(out)] + (["--runs", args.runs] if args.runs else [])
    with warnings_as_lines("experiment", every=False):
        result = run_experiment(
            spec,
            out,
            seeds=seeds,
            jobs=args.jobs,
            command=shlex.join(command),
            quick=args.quick,
            keep_checkpoints=args.keep_checkpoints,
            runs=args.runs,
        )
    print()
    for table in result.analysis.tables[:1]:
        print(table.text())
    print()
    print(f"verdict: {result.analysis.verdict}")
    print(f"report: {result.out / 'report.md'} ({result.seconds / 60:.1f} min)")
    return 0


def _reanalyse(args: argparse.Namespace) -> int:
    from t2t.errors import ConfigError
    from t2t.experiments.runner import reanalyse

    if not args.out:
        raise ConfigError("--reanalyse needs --out DIR, the folder of an experiment's results.json")
    analysis, _ = reanalyse(args.out)
    print(f"verdict: {analysis.verdict}")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0
