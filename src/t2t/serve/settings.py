"""How a server runs: one frozen record that the CLI fills and every part of the server reads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from t2t.errors import ConfigError
from t2t.model.quantize import as_mode

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ServeSettings:
    """`t2t serve`'s options. Limits are there so that no request can take the server down: a batch has
    at most max_batch_size answers in flight, at most max_queue requests wait (the next one gets 429)."""

    model: str  # checkpoint directory (model + tokenizer side by side)
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None  # when set, /v1/* needs `Authorization: Bearer KEY`
    served_model_name: str | None = None  # the `model` clients name; default: the directory's name
    max_batch_size: int = 32  # answers decoded together (a request with n=4 takes 4)
    max_queue: int = 256  # requests waiting for a place in the batch
    max_cohorts: int = 4  # batches stepped in turn: a new batch starts without waiting for the running ones
    batch_wait_ms: float = 5.0  # an idle server waits this long for more requests before decoding
    join_wait_ms: float = 20.0  # while batches decode, waiting requests gather this long for a new one
    dtype: str = "float32"
    quantize: str | None = None  # "int8" (= "int8-dynamic") or "int8-weight-only": t2t.model.quantize
    device: str = "cpu"
    # torch's threads on the scheduler thread (the setting is per thread: the caller's stays as it is).
    # The cores less one: on 2 cores, 2 decoding threads made requests 4-30x slower, the OpenMP workers
    # spinning while the event loop waited for a core. None: torch's default.
    threads: int | None = field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))
    max_n: int = 16  # most answers per prompt (n)
    max_beams: int = 16  # most beams (num_beams)
    max_body_bytes: int = 4 * 2**20  # larger request bodies are refused (413) unread
    shutdown_timeout_s: float = 10.0  # in-flight requests get this long to finish on Ctrl-C / SIGTERM

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads={self.threads} should be at least 1")
        for name in ("max_batch_size", "max_cohorts", "max_n", "max_beams"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} should be at least 1")
        if self.max_queue < 0:
            raise ConfigError(f"max_queue={self.max_queue} should not be negative")
        if min(self.batch_wait_ms, self.join_wait_ms, self.shutdown_timeout_s) < 0:
            raise ConfigError("batch_wait_ms, join_wait_ms and shutdown_timeout_s should not be negative")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype={self.dtype!r} is not one of {', '.join(DTYPES)}")
        object.__setattr__(self, "quantize", as_mode(self.quantize))  # an unknown mode fails here
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port={self.port} is not a TCP port (0 to 65535)")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("api_key is empty; give a key or leave it out")


__all__ = ["DTYPES", "ServeSettings"]
