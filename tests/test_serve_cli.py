"""`t2t serve` as a command: one line naming the extra when it is missing, one line for a missing model,
and a real server process that logs one line per request and shuts down cleanly on SIGTERM / Ctrl-C,
letting the answer in flight finish (SIGTERM to a real process; Ctrl-C to this one)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from t2t.cli.main import main
from test_serve_helpers import _free_port, save_tiny_checkpoint


def test_missing_serve_extra_says_which_extra_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if it were not installed
    assert main(["serve", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "t2t serve: error: t2t serve needs the fastapi package, which is not installed: pip install 't2t[serve]'"
    )


def test_missing_model_directory_is_one_line(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such directory" in err[0]


def test_a_model_that_cannot_load_stops_the_server_with_one_line(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{not json")
    assert main(["serve", "--model", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"t2t serve: error: {tmp_path}: the model could not be loaded"), err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("serve-cli") / "t5", "encoder-decoder")


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


def _stream_through_a_stop(url: str, stop) -> list[str]:  # type: ignore[no-untyped-def]
    """Start a long streamed answer, call stop() once it is decoding, and read the stream to its end."""
    body = {
        "prompt": "summarize: a fox",
        "max_tokens": 200,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
    }
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        stop()  # while the answer is being decoded
        return [line for line in lines if line]


def _assert_whole_answer(lines: list[str]) -> None:
    assert lines[-1] == "data: [DONE]"
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert data[-1]["choices"][0]["finish_reason"] == "length"  # all 200 tokens were delivered


def test_ctrl_c_lets_the_answer_in_flight_finish_then_exits_0(model_dir):
    """In this process: Ctrl-C (SIGINT) reaches uvicorn's handler, the stream ends whole, main returns 0."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    seen: dict[str, list[str]] = {}

    def client() -> None:
        _wait_ready(url)
        seen["lines"] = _stream_through_a_stop(url, lambda: os.kill(os.getpid(), signal.SIGINT))

    thread = threading.Thread(target=client)
    thread.start()
    assert main(["serve", "--model", str(model_dir), "--port", str(port)]) == 0
    thread.join(30)
    _assert_whole_answer(seen["lines"])


@pytest.mark.slow
def test_sigterm_lets_the_answer_in_flight_finish_and_the_process_exits_0(model_dir):
    port = _free_port()
    command = [sys.executable, "-m", "t2t.cli.main", "serve", "--model", str(model_dir), "--port", str(port)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}")
        lines = _stream_through_a_stop(
            f"http://127.0.0.1:{port}", lambda: process.send_signal(signal.SIGTERM)
        )
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    _assert_whole_answer(lines)
    assert process.returncode == 0, output
    assert re.search(r"POST /v1/completions 200 prompt=\d+ new=200 \d+\.\d+s", output), output
    assert "stopped" in output and "Traceback" not in output
