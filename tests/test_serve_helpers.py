"""Helpers for the serve tests (no tests of its own; named test_serve_* to live beside them): tiny
checkpoint directories (a T5, and a GPT-2 with a chat template), a real uvicorn server on a free port in a
thread, and small HTTP helpers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed: pip install 't2t[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed: pip install 't2t[serve]'")

import httpx
import torch
import uvicorn

from generation_helpers import spread_weights, tiny_model_for, train_tokenizer
from t2t.hub import save_pretrained
from t2t.serve.app import create_app
from t2t.serve.settings import ServeSettings

# A ChatML-like template, as instruct checkpoints ship them (tokenizer_config.json's chat_template).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


_TOKENIZERS: dict[str, Any] = {}  # kind -> trained tokenizer, shared by the serve test modules


def _tokenizer(kind: str, scratch: Path) -> Any:
    if kind not in _TOKENIZERS:
        corpus = scratch / f"corpus-{kind}"
        corpus.mkdir(exist_ok=True)
        _TOKENIZERS[kind] = train_tokenizer(corpus, kind, 300)
    return _TOKENIZERS[kind]


def save_tiny_checkpoint(
    directory: Path, arch: str, *, chat_template: str | None = None, seed: int = 0
) -> Path:
    """A random model (weights spread so that outputs vary) and a trained tokenizer, side by side."""
    directory.mkdir(parents=True, exist_ok=True)
    kind = "sentencepiece" if arch == "encoder-decoder" else "bpe"
    tokenizer = _tokenizer(kind, directory.parent)
    model = tiny_model_for(tokenizer, arch, seed=seed)
    spread_weights(model, seed)
    save_pretrained(model, directory)
    tokenizer.save_pretrained(directory)
    if chat_template is not None:
        config_file = directory / "tokenizer_config.json"
        config = json.loads(config_file.read_text()) if config_file.exists() else {}
        config["chat_template"] = chat_template
        config_file.write_text(json.dumps(config))
    return directory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server (HTTP over a socket) running the app in a thread."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=settings.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{settings.port}"

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.app.state.server.engine

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError("the test server did not become ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@contextlib.contextmanager
def live_server(model_dir: Path, **settings: Any) -> Iterator[LiveServer]:
    server = LiveServer(ServeSettings(model=str(model_dir), port=_free_port(), **settings)).start()
    try:
        yield server
    finally:
        server.stop()


def sse_events(response: httpx.Response) -> list[Any]:
    """The data of each server-sent event of a streamed response ('[DONE]' kept as a string)."""
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def slow_down(model: torch.nn.Module, seconds: float) -> Any:
    """Make every forward pass of the model's decoder take `seconds` longer (a hook, removed by the
    returned handle's .remove()), so that a test can catch a request in flight."""

    def pause(*_: Any) -> None:
        time.sleep(seconds)

    return model.decoder.register_forward_pre_hook(pause)


__all__ = ["CHAT_TEMPLATE", "LiveServer", "live_server", "save_tiny_checkpoint", "slow_down", "sse_events"]
