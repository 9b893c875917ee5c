"""benchmarks/three_ways.py at tiny shapes: the three approaches train on the same task and data, for the
same steps, and report comparable rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "three_ways.py"
TINY = [
    "model.tokenizer_vocab_size=400",
    "model.overrides.d_model=32",
    "model.overrides.d_ff=64",
    "data.max_input_length=32",
    "data.limit_train=48",
    "data.limit_eval=12",
    "max_steps=2",
    "data.batch_size=8",
    "eval.batch_size=12",
]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("three_ways", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_three_ways_smoke(capsys):
    rows = load_benchmark().main(["--seed", "1", *TINY])
    assert [name.split()[0] for name, _ in rows] == ["text-to-text", "BERT", "GPT"]
    for _, row in rows:
        assert row["steps"] == 2 and 0.0 <= row["accuracy"] <= 100.0 and row["seconds"] > 0
    sizes = [row["parameters"] for _, row in rows]
    assert max(sizes) < 1.5 * min(sizes), sizes  # the same shape gives similar parameter counts
    table = capsys.readouterr().out
    assert table.count("| 2 |") == 3 and "seed 1" in table
