"""`t2t plot RUN_DIR`: loss, learning-rate and metric curves of a training run as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from t2t.cli.common import check_output_file, example_epilog, warnings_as_lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="draw the loss and metric curves of a training run to PNG",
        description="Read RUN_DIR/metrics.jsonl (written by t2t train) and draw one panel per curve. Lines "
        "that are not records (a run killed mid-line, an edit) are skipped with a warning naming file:line.",
        epilog=example_epilog("t2t plot runs/multitask", "t2t plot runs/multitask --out curves.png"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="PNG path (default RUN_DIR/curves.png)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from t2t.train.plot import plot_run

    out = check_output_file(args.out or Path(args.run_dir) / "curves.png", "--out ")
    with warnings_as_lines("plot"):
        print(plot_run(args.run_dir, out))
    return 0
