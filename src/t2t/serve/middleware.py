"""Plain ASGI middlewares: the API key check, the body size limit, one log line (and metrics) per request.

Plain ASGI rather than Starlette's BaseHTTPMiddleware, which would buffer streamed responses; the log
line is written when the last byte has gone (or the client left), so a streamed answer's time is its
whole time.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from t2t.serve.errors import APIError
from t2t.serve.metrics import Metrics

log = logging.getLogger("t2t.serve")
ENDPOINTS = ("/v1/completions", "/v1/chat/completions", "/v1/score", "/v1/models", "/health", "/metrics", "/")


async def _send_error(send: Send, error: APIError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ApiKeyGuard:
    """With a key set, every /v1/ request needs `Authorization: Bearer KEY` (OpenAI's header): 401
    before the body is even read. The page, /health and /metrics stay open."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is not None and scope["type"] == "http" and scope["path"].startswith("/v1/"):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                what = "is missing" if not given else "is wrong"
                message = f"the API key {what}; send the header 'Authorization: Bearer KEY'"
                await _send_error(send, APIError(401, message, code="invalid_api_key"))
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over `limit` bytes (413) before they are read into memory: no prompt the
    model takes comes near it, and a client cannot make the server buffer gigabytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.limit:
            message = f"the request body has {int(length)} bytes; at most {self.limit}"
            await _send_error(send, APIError(413, message))
            return
        seen = 0

        async def counted() -> Message:  # a body sent in chunks, without a length
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ValueError(f"the request body is over {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


class RequestLog:
    """One line per request when it ends (`id METHOD path status prompt=N new=N 0.123s`), and the
    request counters and latency histogram of /metrics. The routes note token counts in request.state."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = uuid.uuid4().hex[:16]
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self._record(scope, state, status, time.perf_counter() - started)

    def _record(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        path = scope["path"]
        endpoint = path if path in ENDPOINTS else "other"
        status = state.get("stream_error", status)
        prompt, new = state.get("prompt_tokens", 0), state.get("new_tokens", 0)
        self.metrics.requests.labels(endpoint).inc()
        self.metrics.latency.labels(endpoint).observe(seconds)
        if status >= 400:
            self.metrics.errors.labels(str(status)).inc()
        self.metrics.prompt_tokens.inc(prompt)
        self.metrics.generated_tokens.inc(new)
        if endpoint in ("/metrics", "/health"):
            return  # scraped and polled often: not worth a line each
        note = " (client left)" if state.get("cancelled") else ""
        log.info(
            "%s %s %s %d prompt=%d new=%d %.3fs%s",
            state["request_id"],
            scope["method"],
            path,
            status,
            prompt,
            new,
            seconds,
            note,
        )


__all__ = ["ApiKeyGuard", "BodyLimit", "RequestLog"]
