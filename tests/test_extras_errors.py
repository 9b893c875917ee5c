"""An optional feature whose package is missing fails with one line naming the extra to install
(`pip install 't2t[plot]'`), not an ImportError traceback: `t2t plot`, the experiments' plots, TensorBoard
logging (a warning: metrics.jsonl is still written), Parquet and Hugging Face `datasets` sources, and the
server's other packages (fastapi: tests/test_serve_cli.py). A package is made missing by
`sys.modules[name] = None`, which makes `import name` raise ImportError. Every `require(...)` of
t2t.utils.extras in src/t2t is listed here, so a new one comes with its test."""

from __future__ import annotations

import ast
import json
import logging
import re
import sys
import tomllib
from pathlib import Path

import pytest

from t2t.cli.main import main
from t2t.utils.extras import MissingExtra

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "t2t"
# Each require() of t2t.utils.extras: (file under src/t2t, the extra it names) -> the test of it here.
REQUIRE_SITES = {
    ("train/plot.py", "plot"): "test_t2t_plot_without_matplotlib_names_the_plot_extra",
    ("experiments/plots.py", "plot"): "test_experiment_plots_without_matplotlib_name_the_plot_extra",
    ("train/runlog.py", "tensorboard"): "test_tensorboard_logging_without_tensorboard_warns_and_goes_on",
    ("data/sources.py", "parquet"): "test_parquet_without_pyarrow_names_the_parquet_extra",
    ("data/sources.py", "datasets"): "test_hf_datasets_without_datasets_name_the_datasets_extra",
    ("cli/serve.py", "serve"): "test_t2t_serve_without_one_of_its_packages_names_the_serve_extra",
}


def _missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def _require_sites() -> set[tuple[str, str]]:
    """(file, extra) of each call of t2t.utils.extras.require in src/t2t (interop has a require of
    its own, for config keys)."""
    sites = set()
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = any(
            isinstance(node, ast.ImportFrom)
            and node.module == "t2t.utils.extras"
            and any(alias.name == "require" for alias in node.names)
            for node in ast.walk(tree)
        )
        if not imported or path.relative_to(SRC).as_posix() == "utils/extras.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "require":
                extra = node.args[1]
                assert isinstance(extra, ast.Constant), f"{path}:{node.lineno}: the extra should be a literal"
                sites.add((path.relative_to(SRC).as_posix(), extra.value))
    return sites


def test_every_require_has_a_test_here():
    sites = _require_sites()
    assert sites == set(REQUIRE_SITES), (
        f"new: {sorted(sites - set(REQUIRE_SITES))}; gone: {sorted(set(REQUIRE_SITES) - sites)}"
    )
    for name in REQUIRE_SITES.values():
        assert callable(globals().get(name)), name


def test_every_extra_named_is_one_pyproject_declares():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    for _, extra in REQUIRE_SITES:
        assert extra in extras, f"pip install 't2t[{extra}]' would install nothing: pyproject has no {extra}"


def test_each_required_package_is_in_the_extra_named():
    """The package a message names is one its extra installs (pyarrow in [parquet], ...)."""
    from t2t.cli.serve import SERVE_MODULES

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    modules = {
        "plot": ["matplotlib"],
        "tensorboard": ["tensorboard"],
        "parquet": ["pyarrow.parquet"],
        "datasets": ["datasets"],
        "serve": list(SERVE_MODULES),
    }
    for extra, names in modules.items():
        installs = {
            re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("-", "_") for req in extras[extra]
        }
        for name in names:
            assert name.split(".")[0] in installs, f"[{extra}] does not install {name}"


def test_t2t_plot_without_matplotlib_names_the_plot_extra(monkeypatch, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 1, "loss": 2.5}) + "\n")
    _missing(monkeypatch, "matplotlib", "matplotlib.pyplot")
    assert main(["plot", str(run)]) == 2
    assert _one_line(capsys.readouterr().err) == (
        "t2t plot: error: t2t plot needs the matplotlib package, which is not installed: "
        "pip install 't2t[plot]'"
    )
    assert not (run / "curves.png").exists()


def test_experiment_plots_without_matplotlib_name_the_plot_extra(monkeypatch, tmp_path):
    from t2t.errors import T2TError
    from t2t.experiments import plots

    _missing(monkeypatch, "matplotlib", "matplotlib.pyplot")
    with pytest.raises(MissingExtra) as err:
        plots.loss_curves([], tmp_path / "loss.png")
    assert _one_line(str(err.value)) == (
        "the experiments' plots needs the matplotlib package, which is not installed: pip install 't2t[plot]'"
    )
    # a T2TError, so the experiment's report stops with this line rather than noting "(not drawn: ...)"
    assert isinstance(err.value, T2TError)
    assert not (tmp_path / "loss.png").exists()


def test_tensorboard_logging_without_tensorboard_warns_and_goes_on(monkeypatch, tmp_path, caplog):
    from t2t.train.runlog import METRICS_FILE, RunLog

    _missing(monkeypatch, "tensorboard")
    with caplog.at_level(logging.WARNING, logger="t2t"):
        log = RunLog(tmp_path)
        log.write("train", 1, {"loss": 2.5})
        log.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "t2t" and r.levelno == logging.WARNING]
    assert warnings == [
        "TensorBoard logging needs the tensorboard package, which is not installed: pip install "
        "'t2t[tensorboard]' (or set tensorboard: false); metrics.jsonl is written"
    ]
    records = [json.loads(line) for line in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert records == [{"kind": "train", "step": 1, "loss": 2.5}]
    assert not (tmp_path / "tensorboard").exists()


def test_tensorboard_false_says_nothing_about_the_extra(monkeypatch, tmp_path, caplog):
    from t2t.train.runlog import RunLog

    _missing(monkeypatch, "tensorboard")
    with caplog.at_level(logging.WARNING, logger="t2t"):
        RunLog(tmp_path, tensorboard=False).close()
    assert not [r for r in caplog.records if "tensorboard" in r.getMessage()]


def test_parquet_without_pyarrow_names_the_parquet_extra(monkeypatch, tmp_path):
    from t2t.data import read_records

    path = tmp_path / "train.parquet"
    path.write_bytes(b"PAR1")  # never opened: the reader stops at the import
    _missing(monkeypatch, "pyarrow", "pyarrow.parquet")
    with pytest.raises(MissingExtra) as err:
        next(read_records(path))
    assert _one_line(str(err.value)) == (
        f"{path}: reading Parquet needs the pyarrow package, which is not installed: "
        "pip install 't2t[parquet]'"
    )


@pytest.mark.parametrize("source", ["train.arrow", "hf:nyu-mll/glue/sst2:train"], ids=["arrow-file", "hub"])
def test_hf_datasets_without_datasets_name_the_datasets_extra(monkeypatch, tmp_path, source):
    from t2t.data import read_records

    if not source.startswith("hf:"):
        (tmp_path / source).write_bytes(b"")  # never opened: the reader stops at the import
        source = str(tmp_path / source)
    _missing(monkeypatch, "datasets")
    with pytest.raises(MissingExtra) as err:
        next(read_records(source))
    assert _one_line(str(err.value)) == (
        f"{source}: reading Hugging Face datasets needs the datasets package, which is not installed: "
        "pip install 't2t[datasets]'"
    )


@pytest.mark.parametrize("module", ["uvicorn", "prometheus_client", "jinja2"])
def test_t2t_serve_without_one_of_its_packages_names_the_serve_extra(monkeypatch, tmp_path, capsys, module):
    """fastapi: tests/test_serve_cli.py::test_missing_serve_extra_says_which_extra_to_install."""
    _missing(monkeypatch, module)
    assert main(["serve", "--model", str(tmp_path)]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"t2t serve: error: t2t serve needs the {module} package, which is not installed: "
        "pip install 't2t[serve]'"
    )
