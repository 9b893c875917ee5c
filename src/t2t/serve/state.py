"""What the route handlers share, kept on the FastAPI application (`app.state.server`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from starlette.requests import Request

from t2t.serve.engine import Engine
from t2t.serve.errors import APIError
from t2t.serve.loader import ServedModel
from t2t.serve.metrics import Metrics
from t2t.serve.settings import ServeSettings


@dataclass
class ServerState:
    settings: ServeSettings
    engine: Engine
    metrics: Metrics


def server(request: Request) -> ServerState:
    return request.app.state.server


def served_model(request: Request) -> ServedModel:
    """The loaded model, or 503 while it is still loading (or failed to load)."""
    engine = server(request).engine
    if engine.served is None:
        if engine.load_error is not None:
            raise APIError(503, f"the model could not be loaded ({engine.load_error})")
        raise APIError(503, "the model is still loading; GET /health says when it is ready")
    return engine.served


def request_id(request: Request, prefix: str) -> str:
    """The id the request log printed for this request, with OpenAI's prefix (cmpl-, chatcmpl-, ...)."""
    return f"{prefix}-{getattr(request.state, 'request_id', uuid.uuid4().hex[:16])}"


def note_tokens(request: Request, prompt_tokens: int, new_tokens: int) -> None:
    """Token counts for the request log line and the metrics (read by `t2t.serve.requestlog`)."""
    request.state.prompt_tokens = prompt_tokens
    request.state.new_tokens = new_tokens


__all__ = ["ServerState", "note_tokens", "request_id", "served_model", "server"]
