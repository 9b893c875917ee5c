"""The benchmarks of issue 18 run end to end at tiny shapes (`--quick`: their figures mean nothing):
generate.py with t2t's precisions and CTranslate2 as a peer (skipped with a note when the package is
absent), train.py in fp32 and bf16 with the measured matmul peaks, data_speed.py with data workers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
HAS_CT2 = importlib.util.find_spec("ctranslate2") is not None


def _run(script: str, *args: str, block: str | None = None) -> str:
    """The benchmark's output; `block` makes that package unimportable in the benchmark's process."""
    path = str(BENCHMARKS / script)
    if block is None:
        argv = [sys.executable, path, *args]
    else:
        code = (
            f"import sys, runpy; sys.modules[{block!r}] = None; sys.argv = [{path!r}, *{list(args)!r}]; "
            f"runpy.run_path({path!r}, run_name='__main__')"
        )
        argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_generate_benchmark_without_ctranslate2():
    out = _run(
        "generate.py",
        "--quick",
        "--models",
        "t5-tiny",
        "--engines",
        "t2t,t2t-int8,ct2-int8",
        block="ctranslate2",
    )
    assert "ctranslate2 is not installed" in out and "ct2-int8 skipped" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("t5-tiny ")]
    engines = {row[3] for row in rows if len(row) > 3 and row[1] in ("greedy", "beam4")}
    assert engines == {"t2t", "t2t-int8"}
    assert "ms per new token" in out and "inherent growth" in out


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CT2, reason="ctranslate2 is not installed (a benchmark-only peer)")
def test_generate_benchmark_with_ctranslate2():
    out = _run(
        "generate.py", "--quick", "--models", "gpt2-tiny", "--engines", "t2t,t2t-bf16,t2t-int8,ct2-int8"
    )
    rows = [line.split() for line in out.splitlines() if line.startswith("gpt2-tiny ")]
    engines = {row[3] for row in rows if len(row) > 3 and row[1] in ("greedy", "beam4")}
    assert engines == {"t2t", "t2t-bf16", "t2t-int8", "ct2-int8"}
    assert "t2t int8 / CTranslate2 int8 tokens/s" in out and "t2t bf16 / t2t fp32 tokens/s" in out


@pytest.mark.slow
def test_train_benchmark_reports_mfu_per_precision():
    out = _run("train.py", "--quick", "--models", "t5-tiny")
    assert "fp32:" in out and "bf16:" in out and "GFLOP/s" in out
    assert "verdict t5-tiny fp32: t2t MFU" in out and "verdict t5-tiny bf16: t2t MFU" in out


@pytest.mark.slow
def test_data_speed_benchmark():
    out = _run("data_speed.py", "--quick", "--workers", "0", "2")
    lines = [line.split() for line in out.splitlines()]
    assert sum(1 for row in lines if row and row[0] in ("0", "2")) == 4  # alone and with training


@pytest.mark.slow
def test_quickstart_probe_prints_train_and_test_exact_match():
    out = _run("quickstart_probe.py", "--task", "question", "--steps", "3", "--limit", "2")
    lines = [line for line in out.splitlines() if "exact match" in line]
    assert [line.split()[1] for line in lines] == ["train", "test"] and "(gold " in lines[0]
