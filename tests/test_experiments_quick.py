"""Every experiment of the lab, in its --quick version, end to end through the one Trainer: the report's
structure (claim, verdict, table of mean ± std, the command, the plots) and, for each, that the quantity
it measures is there and computed (diverged runs counted, gradient norms per block, errors by position,
the stage weights the variants start from, the KV cache shrinking with the key/value heads, ...).
The quick versions are far too small to support a verdict; the full ones are in docs/experiments/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from t2t.experiments import load_spec, run_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """One vocabulary directory for all text experiments (each quick vocabulary is trained once)."""
    return tmp_path_factory.mktemp("experiments-work")


def _run(name: str, tmp_path: Path, work: Path):  # type: ignore[no-untyped-def]
    spec = load_spec(name, quick=True)
    result = run_experiment(
        spec,
        tmp_path / name,
        command=f"t2t experiment {name} --quick",
        quick=True,
        work=work,
        log=lambda _: None,
    )
    out = tmp_path / name
    report = (out / "report.md").read_text()
    for part in (
        "**Claim.**",
        "**Verdict.**",
        "## Results",
        "## Design",
        "## Reproduce",
        f"t2t experiment {name} --quick",
    ):
        assert part in report, part
    assert "This is the `--quick` version" in report
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == name and results["verdict"] == result.analysis.verdict
    assert results["seeds"] == spec.seeds and results["machine"] and results["date"]
    errors = [r for r in results["records"] if r["status"] == "error"]
    assert not errors, errors[0]["traceback"]
    for figure in result.analysis.plots:
        assert (out / figure.filename).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure.filename
        assert f"]({figure.filename})" in report
    first = result.analysis.tables[0]
    variants = {v.name for v in spec.variants}
    if name not in ("norm_position", "transfer"):  # their first tables are by depth / by data share
        assert {row[0] for row in first.rows} == variants
    assert " ± " in report
    return result, results["records"]


def test_norm_position(tmp_path, work) -> None:
    result, records = _run("norm_position", tmp_path, work)
    by_lr = {}
    for r in records:
        by_lr.setdefault(r["point"]["train.optim.lr"], []).append(r)
    assert all(r["status"] == "diverged" and r["metrics"]["diverged"] == 1.0 for r in by_lr[1000.0])
    assert all(r["status"] == "ok" for r in by_lr[0.001])
    assert set(result.analysis.findings["largest_lr"].values()) == {0.001}
    assert (
        "| 2 layers, warm-up 0 | 0.001 | 0.001 | 50% | 50% |"
        in (tmp_path / "norm_position" / "report.md").read_text()
    )


def test_residual(tmp_path, work) -> None:
    result, records = _run("residual", tmp_path, work)
    for r in records:
        assert r["curves"]["blocks"] == ["decoder.0", "decoder.1", "decoder.2"]
        assert len(r["curves"]["grad_norms"]) == len(r["curves"]["probe_steps"]) == 2
        assert r["metrics"]["grad_ratio"] == pytest.approx(
            r["curves"]["grad_norms"][-1][0] / r["curves"]["grad_norms"][-1][-1]
        )
        assert 0 <= r["metrics"]["exact_match"] <= 100
    assert "Against residual" in result.analysis.verdict


def test_norms(tmp_path, work) -> None:
    result, records = _run("norms", tmp_path, work)
    for r in records:
        assert r["metrics"]["step_seconds"] > 0 and r["metrics"]["norm_seconds"] > 0
        assert "test/quickstart_translate/exact_match" in r["metrics"]
    assert result.analysis.verdict.startswith(("rmsnorm matches layernorm", "rmsnorm differs from layernorm"))


def test_exposure_bias(tmp_path, work) -> None:
    result, records = _run("exposure_bias", tmp_path, work)
    for r in records:
        free, counts = r["curves"]["position_error_free"], r["curves"]["position_count"]
        assert len(free) == len(counts) == len(r["curves"]["position_error_forced"]) and counts[0] == 8
        assert r["metrics"]["exposure_gap"] == pytest.approx(
            r["metrics"]["error_rate_free"] - r["metrics"]["error_rate_forced"]
        )
    sampled = (tmp_path / "exposure_bias" / "runs" / "ss_linear" / "seed-0" / "metrics.jsonl").read_text()
    probs = [json.loads(line)["ss_prob"] for line in sampled.splitlines() if '"scheduled_sampling"' in line]
    assert probs[0] == 0.0 and probs[-1] == 0.5  # the schedule ran: teacher forcing first, then sampling
    assert "tf_then_rl" in result.analysis.verdict  # the RL arm ran


def test_the_rl_arm_is_compared_with_more_teacher_forcing() -> None:
    from t2t.experiments.analysis import _continuation_line

    def record(variant: str, score: float) -> dict:
        return {"variant": variant, "point": {}, "status": "ok", "metrics": {"em": score}}

    records = [record("tf_then_rl", s) for s in (90.0, 91.0, 92.0)]
    records += [record("tf_then_tf", s) for s in (80.0, 81.0, 79.0)]
    line = _continuation_line(records, "em")
    assert "RL (tf_then_rl) scores 91.00 against 80.00" in line and "clearly better" in line
    assert _continuation_line(records[:3], "em") == "."  # no tf_then_tf: nothing to compare


def test_transfer(tmp_path, work) -> None:
    _, records = _run("transfer", tmp_path, work)
    stages = [r for r in records if r["stage"]]
    assert len(stages) == 2 and all(Path(r["checkpoint"]).is_dir() for r in stages)
    tuned = [r for r in records if not r["stage"]]
    low = [r for r in tuned if r["point"]["data.fraction"] == 0.1]
    assert all("unseen/mean" in r["metrics"] and "test/mean" in r["metrics"] for r in low)
    assert all("unseen/mean" not in r["metrics"] for r in tuned if r["point"]["data.fraction"] == 1.0)
    report = (tmp_path / "transfer" / "report.md").read_text()
    assert "| 10% |" in report and "| 100% |" in report


def test_objectives(tmp_path, work) -> None:
    result, records = _run("objectives", tmp_path, work)
    stages = {r["variant"]: r for r in records if r["stage"] and r["seed"] == 0}
    assert set(stages) == {"span_corruption", "bert_mlm"}
    span, mlm = stages["span_corruption"]["metrics"], stages["bert_mlm"]["metrics"]
    assert span["target_tokens_per_batch"] < mlm["target_tokens_per_batch"]  # spans vs the whole chunk
    assert result.analysis.verdict.startswith(("Nothing beats scratch", "span_corruption", "bert_mlm"))


def test_mixing(tmp_path, work) -> None:
    result, records = _run("mixing", tmp_path, work)
    single = [r for r in records if r["variant"] == "single_task"]
    for r in single:
        assert {
            "test/quickstart_translate/exact_match",
            "test/quickstart_question/exact_match",
            "test/mean",
        } <= set(r["metrics"])
        assert set(r["curves"]["loss_by_task"]) == {"quickstart_translate", "quickstart_question"}
    assert "single_task" in result.analysis.verdict


def test_attention(tmp_path, work) -> None:
    result, records = _run("attention", tmp_path, work)
    seed0 = {r["variant"]: r["metrics"] for r in records if r["seed"] == 0}
    assert (
        seed0["GQA"]["kv_cache_bytes"] * 2
        == seed0["MHA"]["kv_cache_bytes"]
        == seed0["MQA"]["kv_cache_bytes"] * 4
    )
    assert abs(seed0["MQA"]["parameters"] - seed0["MHA"]["parameters"]) < 0.01 * seed0["MHA"]["parameters"]
    assert all(m["decode_tokens_per_s"] > 0 and m["eval_loss"] > 0 for m in seed0.values())
    assert "kv_cache_bytes 50% of MHA's" in result.analysis.verdict


def test_self_training(tmp_path, work) -> None:
    result, records = _run("self_training", tmp_path, work)
    for r in records:
        if r["variant"] == "self_training":
            rounds = r["curves"]["rounds"]
            assert [x["round"] for x in rounds] == [0.0, 1.0]
            assert 0 < rounds[1]["pseudo_kept"] <= 4.0  # half of a pool of 8 (empty answers are dropped)
            assert 0 <= r["metrics"]["pseudo_accuracy"] <= 100 and "test/mean" in rounds[1]
    assert "supervised" in result.analysis.verdict


def test_the_command_runs_in_parallel_processes_and_prints_the_table(tmp_path, capsys) -> None:
    from t2t.cli.main import main

    out = tmp_path / "cli"
    assert main(["experiment", "residual", "--quick", "--jobs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict: Against residual" in printed and "no-residual" in printed
    assert (out / "report.md").exists() and (out / "grad_norms.png").exists()
    results = json.loads((out / "results.json").read_text())
    assert results["jobs"] == 2 and all(r["status"] == "ok" for r in results["records"])
    # --reanalyse writes the report again from results.json alone, keeping when and where it ran
    report = (out / "report.md").read_text()
    (out / "report.md").unlink()
    (out / "grad_norms.png").unlink()
    capsys.readouterr()
    assert main(["experiment", "--reanalyse", "--out", str(out)]) == 0
    assert "verdict: Against residual" in capsys.readouterr().out
    assert (out / "report.md").read_text() == report and (out / "grad_norms.png").exists()
    assert json.loads((out / "results.json").read_text())["date"] == results["date"]


def test_reanalyse_of_a_folder_without_results_is_one_line(tmp_path, capsys) -> None:
    from t2t.cli.main import main

    assert main(["experiment", "--reanalyse", "--out", str(tmp_path)]) == 2
    assert "results.json" in capsys.readouterr().err


def test_the_command_refuses_an_out_that_holds_a_report(tmp_path, capsys) -> None:
    from t2t.cli.main import main

    (tmp_path / "report.md").write_text("an earlier report")
    assert main(["experiment", "residual", "--quick", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
