"""Peak memory of streaming a corpus: a 1 GB file against a 10 MB one, each read in a fresh process.

    .venv/bin/python benchmarks/data_memory.py                  # JSONL, 10 MB vs 1 GB, files under /tmp
    .venv/bin/python benchmarks/data_memory.py --format text --big-mb 200

Each run reads every record through `Task.examples` (reader + preprocessing) in a subprocess and reports
that process's peak resident set size (ru_maxrss). The files are generated once and kept in --dir.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "data",
    "flows",
    "from",
    "text",
    "to",
    "text",
    "and",
    "back",
]


def generate(path: Path, megabytes: int, fmt: str) -> Path:
    """A corpus of about `megabytes` MB: JSONL {"inputs", "targets"} records or plain-text lines."""
    target = megabytes * 1_000_000
    if path.exists() and abs(path.stat().st_size - target) < 1_000_000:
        return path
    rng = random.Random(0)
    lines = []
    for _ in range(2000):
        text = " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))
        lines.append(json.dumps({"inputs": text, "targets": rng.choice(WORDS)}) if fmt == "jsonl" else text)
    block = ("\n".join(lines) + "\n").encode("utf-8")
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as fh:
        written = 0
        while written < target:
            fh.write(block)
            written += len(block)
    tmp.replace(path)
    return path


def read_all(path: str) -> None:
    """Child process: stream every example, print the count, seconds and peak RSS as JSON."""
    from t2t.data import Task

    start = time.perf_counter()
    count = sum(1 for _ in Task("bench", path).examples())
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"examples": count, "seconds": time.perf_counter() - start, "peak_mb": peak_kb / 1024}))


def measure(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--format", choices=["jsonl", "text"], default="jsonl")
    parser.add_argument("--small-mb", type=int, default=10)
    parser.add_argument("--big-mb", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/t2t_data_memory"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        read_all(args.child)
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    suffix = ".jsonl" if args.format == "jsonl" else ".txt"
    rows = []
    for megabytes in (args.small_mb, args.big_mb):
        path = generate(args.dir / f"corpus_{megabytes}mb{suffix}", megabytes, args.format)
        result = measure(path)
        rows.append((megabytes, result))
        size = path.stat().st_size / 1e6
        print(
            f"{args.format} {size:8.1f} MB file: {result['examples']:>10,} examples in {result['seconds']:6.1f} s, "
            f"peak RSS {result['peak_mb']:.1f} MB"
        )
    small, big = rows[0][1]["peak_mb"], rows[1][1]["peak_mb"]
    print(f"peak RSS ratio big/small: {big / small:.3f} ({(big / small - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
