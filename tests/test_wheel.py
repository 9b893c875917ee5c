"""t2t as users install it: a wheel built from this checkout, installed into a fresh virtual environment
(its dependencies at the tested versions of constraints.txt), used from a directory that is not the
checkout. The recipes, task declarations and built-in data must come with the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.tokenizer_vocab_size=300", "data.limit_train=32", "data.limit_eval=8", "max_steps=2"]


def _sh(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(the fresh venv's t2t command, its environment, an empty working directory)."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    dist = root / "dist"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(dist),
        str(ROOT),
    ]
    _sh(build, root, env)
    (wheel,) = dist.glob("t2t-*.whl")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    install = [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "-c",
        str(ROOT / "constraints.txt"),
        str(wheel),
    ]
    _sh(install, root, env, timeout=900)
    work = root / "work"
    work.mkdir()
    return root / "venv" / "bin" / "t2t", env, work


@pytest.mark.slow
def test_the_wheel_ships_its_recipes_and_data(installed):
    t2t, env, work = installed
    assert _sh([str(t2t), "--version"], work, env).startswith("t2t 0.")
    recipes = _sh([str(t2t), "finetune", "--list"], work, env).splitlines()
    names = [line.split()[0] for line in recipes]
    assert {"bert-sentiment", "gpt-pretrain", "bert-qa"} <= set(names)
    for name in names:  # every recipe trains two steps on its shipped data
        run = ["--quiet", f"run_dir={work / 'runs' / name}", *TINY]
        _sh([str(t2t), "finetune", "--recipe", name, *run], work, env)
    dry = _sh([str(t2t), "train", "--config", "configs/finetune_multitask.yaml", "--dry-run"], work, env)
    assert "run_dir:" in dry  # configs/ resolves to the package's configs from any directory
    assert not (work / "configs").exists()


@pytest.mark.slow
def test_the_quickstart_and_eval_run_from_the_wheel(installed):
    t2t, env, work = installed
    _sh(
        [str(t2t), "quickstart", "--fast", "--out", str(work / "qs"), "--no-progress"], work, env, timeout=900
    )
    model = work / "qs" / "model"
    out = _sh(
        [str(t2t), "eval", "--model", str(model), "--tasks", "quickstart_translate", "--limit", "8"],
        work,
        env,
    )
    assert "quickstart_translate" in out
    run = next((work / "qs" / "runs").iterdir())
    missing = subprocess.run([str(t2t), "plot", str(run)], cwd=work, env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "pip install 't2t[plot]'" in missing.stderr  # an extra not installed
