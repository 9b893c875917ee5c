"""Every user error of the CLI is one line on stderr and exit status 2, never a traceback: bad flag
values, output paths that a file blocks, checkpoints of another architecture, half-written checkpoints."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import t2t
from generation_helpers import tiny_model_for, train_tokenizer
from t2t.cli.main import main, os_error_line

from helpers import one_line_error


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A working T5, a BERT (encoder only: nothing to generate with), a half-written copy of the T5
    (weights cut short, as a killed save leaves them) and a directory with a config but no weights."""
    root = tmp_path_factory.mktemp("ckpts")
    sp = train_tokenizer(root, "sentencepiece", 300)
    t5 = tiny_model_for(sp, "encoder-decoder", seed=1)
    t5.save_pretrained(root / "t5")
    sp.save_pretrained(root / "t5")
    wp = train_tokenizer(root, "wordpiece", 300)
    torch.manual_seed(0)
    t2t.build_model(t2t.preset("bert-tiny", vocab_size=wp.model_vocab_size)).save_pretrained(root / "bert")
    wp.save_pretrained(root / "bert")
    for name in ("half", "noweights"):
        (root / name).mkdir()
        for f in (root / "t5").iterdir():
            if f.name != "model.safetensors":
                (root / name / f.name).write_bytes(f.read_bytes())
    (root / "half" / "model.safetensors").write_bytes((root / "t5" / "model.safetensors").read_bytes()[:999])
    (root / "afile").write_text("not a directory\n")
    return {p.name: p for p in root.iterdir()}


def test_train_bad_device_is_one_line(capsys, tmp_path):
    line = one_line_error(
        capsys,
        ["train", "--config", "configs/finetune_multitask.yaml", "device=foo", f"run_dir={tmp_path / 'run'}"],
    )
    assert "device='foo' is not a device; use cpu, cuda, cuda:N, mps or auto" in line
    assert not (tmp_path / "run").exists()  # refused before the run directory is made


def test_finetune_bad_device_is_one_line(capsys):
    line = one_line_error(capsys, ["finetune", "--recipe", "bert-sentiment", "device=foo", "epochs=1"])
    assert "device='foo' is not a device; use cpu, cuda, cuda:N, mps or auto" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_finetune_missing_gpu_is_one_line(capsys):
    line = one_line_error(capsys, ["finetune", "--recipe", "bert-sentiment", "device=cuda"])
    assert "device=cuda: CUDA is not available on this machine; use device=cpu" in line


@pytest.mark.parametrize("device", ["foo", "meta", "cuda:x"])
def test_eval_bad_device_is_one_line(capsys, checkpoints, tmp_path, device):
    argv = ["eval", "--model", str(checkpoints["t5"]), "--tasks", "quickstart_translate"]
    line = one_line_error(capsys, [*argv, "--device", device, "--out", str(tmp_path / "e")])
    assert f"--device {device!r} is not a device" in line


@pytest.mark.parametrize("sub", ["", "sub"])
def test_eval_out_blocked_by_a_file_fails_before_the_model_loads(capsys, checkpoints, sub):
    out = checkpoints["afile"] / sub if sub else checkpoints["afile"]
    # --model does not exist: the --out check comes first, so no time is spent on the model
    line = one_line_error(capsys, ["eval", "--model", "nowhere", "--tasks", "x", "--out", str(out)])
    assert str(checkpoints["afile"]) in line and "is a file" in line


def test_finetune_run_dir_blocked_by_a_file(capsys, checkpoints):
    argv = ["finetune", "--recipe", "bert-sentiment", f"run_dir={checkpoints['afile']}/run"]
    line = one_line_error(capsys, argv)
    assert f"run_dir={checkpoints['afile']}/run: {checkpoints['afile']} is a file, not a directory" in line


def test_convert_to_below_a_file(capsys, checkpoints):
    target = checkpoints["afile"] / "converted"
    line = one_line_error(capsys, ["convert", "--from", str(checkpoints["t5"]), "--to", str(target)])
    assert f"--to {target}: {checkpoints['afile']} is a file, not a directory" in line


def test_tokenizer_out_is_a_file_through_the_general_os_error_line(capsys, checkpoints):
    corpus = checkpoints["corpus.txt"]
    argv = ["tokenizer", "train", "--input", str(corpus), "--vocab-size", "300"]
    line = one_line_error(capsys, [*argv, "--out", str(checkpoints["afile"])])
    assert f"{checkpoints['afile']}: file exists; a file stands where a directory should be" in line


@pytest.mark.parametrize("command", ["generate", "eval"])
def test_encoder_only_checkpoint_cannot_generate(capsys, checkpoints, tmp_path, command):
    argv = [command, "--model", str(checkpoints["bert"])]
    argv += ["hello"] if command == "generate" else ["--tasks", "quickstart_translate", "--quiet"]
    line = one_line_error(capsys, [*argv, "--out", str(tmp_path)] if command == "eval" else argv)
    assert "no decoder to generate with" in line


@pytest.mark.parametrize("command", ["generate", "eval", "convert", "inspect"])
@pytest.mark.parametrize("broken", ["half", "noweights"])
def test_half_written_checkpoint_is_one_line(capsys, checkpoints, tmp_path, command, broken):
    model = str(checkpoints[broken])
    argv = {
        "generate": ["generate", "--model", model, "hello"],
        "eval": ["eval", "--model", model, "--tasks", "quickstart_translate", "--out", str(tmp_path)],
        "convert": ["convert", "--from", model, "--to", str(tmp_path / "c")],
        "inspect": ["inspect", model],
    }[command]
    if command == "inspect":  # reads the config only: a checkpoint without weights inspects fine
        assert main(argv) == 0
        return
    line = one_line_error(capsys, argv)
    expected = "cannot read safetensors file" if broken == "half" else "no model.safetensors"
    assert model in line and expected in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--new-tokens", "0"], "argument --new-tokens: 0 should be at least 1"),
        (["eval", "--model", "m"], "the following arguments are required: --tasks"),
        (["eval", "--model", "m", "--tasks", "t", "--limit", "x"], "argument --limit: 'x' is not an integer"),
        (["convert", "--from", "a", "--to", "b", "--format", "onnx"], "argument --format: invalid choice"),
        (["finetune", "--recipe", "bert-sentimet"], "no recipe 'bert-sentimet'"),
        (["finetune", "--recipe", "bert-sentiment", "epochs=abc"], "epochs='abc' should be a number"),
        (["inspect", "t5-smal"], "unknown preset 't5-smal'"),
    ],
)
def test_bad_flag_values_are_one_line(capsys, argv, message):
    assert message in one_line_error(capsys, argv)


def test_unknown_command_is_one_line(capsys):
    with pytest.raises(SystemExit) as done:
        main(["evaluate"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "invalid choice: 'evaluate'" in err


@pytest.mark.parametrize(
    ("code", "path", "expected"),
    [
        (errno.EACCES, "/srv/out", "/srv/out: permission denied; pass a path you may read and write"),
        (
            errno.ENOSPC,
            "runs/x/model.safetensors",
            "runs/x/model.safetensors: no space left on device; the disk is full",
        ),
        (errno.EISDIR, "runs", "runs: is a directory; pass a file path"),
    ],
)
def test_os_error_line_names_the_path_and_the_fix(code, path, expected):
    assert os_error_line(OSError(code, os.strerror(code), path)).startswith(expected)


def test_os_error_without_a_path_is_not_hidden(monkeypatch):
    """An OSError about no path (a socket, a device) is a bug, not a user error: it is raised as is."""
    import t2t.cli.demo as demo

    def broken(args):  # type: ignore[no-untyped-def]
        raise ConnectionResetError(errno.ECONNRESET, "reset")

    monkeypatch.setattr(demo, "run", broken)
    with pytest.raises(ConnectionResetError):
        main(["demo"])


@pytest.mark.slow
def test_quickstart_out_on_a_file_in_a_fresh_process(tmp_path):
    """The whole command in its own process: exit 2, one line on stderr, no traceback."""
    blocker = tmp_path / "results"
    blocker.write_text("")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "t2t.cli.main",
            "quickstart",
            "--fast",
            "--no-progress",
            "--out",
            str(blocker),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert f"{blocker}: file exists" in proc.stderr
