"""`t2t serve` as a command: one line naming the extra when it is missing, one line for a missing model,
and a real server process that logs one line per request and shuts down cleanly on SIGTERM / Ctrl-C,
letting the answer in flight finish."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
import torch

from t2t.cli.main import main
from test_serve_helpers import _free_port, save_tiny_checkpoint


def test_missing_serve_extra_says_which_extra_to_install(monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a)
    )
    assert main(["serve", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "t2t serve: error: t2t serve needs fastapi: install the serve extra (pip install 't2t[serve]')"
    )


def test_missing_model_directory_is_one_line(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such directory" in err[0]


def test_a_model_that_cannot_load_stops_the_server_with_one_line(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{not json")
    threads = str(torch.get_num_threads())  # the server sets torch's threads: keep this process's
    assert main(["serve", "--model", str(tmp_path), "--port", "0", "--threads", threads]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"t2t serve: error: {tmp_path}: the model could not be loaded"), err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("serve-cli") / "t5", "encoder-decoder")


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_server_process_finishes_the_answer_in_flight_and_exits_cleanly(model_dir, stop_signal):
    port = _free_port()
    command = [sys.executable, "-m", "t2t.cli.main", "serve", "--model", str(model_dir), "--port", str(port)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = {
            "prompt": "summarize: a fox",
            "max_tokens": 500,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
        }
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            process.send_signal(stop_signal)  # while the answer is being decoded
            rest = [line for line in lines if line]
        data = [json.loads(line[6:]) for line in rest if line.startswith("data: {")]
        assert rest[-1] == "data: [DONE]"
        assert data[-1]["choices"][0]["finish_reason"] == "length"  # all 500 tokens were delivered
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert re.search(r"POST /v1/completions 200 prompt=\d+ new=500 \d+\.\d+s", output), output
    assert "stopped" in output and "Traceback" not in output
