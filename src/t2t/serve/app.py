"""The FastAPI application: routes, error mapping, middlewares, and the scheduler's lifetime.

    app = create_app(ServeSettings(model="runs/quickstart/model"))   # run it with uvicorn

The model loads on the scheduler thread when the application starts, so the server answers /health
(503 "loading", then 200) at once; the scheduler stops when the application shuts down, after uvicorn
has let in-flight requests finish. Every error leaves as OpenAI's error body with its status code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from t2t.serve import completions, info, score
from t2t.serve.engine import Engine
from t2t.serve.errors import APIError
from t2t.serve.loader import ServedModel, load_served_model
from t2t.serve.metrics import Metrics
from t2t.serve.middleware import ApiKeyGuard, BodyLimit, RequestLog
from t2t.serve.settings import ServeSettings
from t2t.serve.state import ServerState
from t2t.utils.version import version

log = logging.getLogger("t2t.serve")


def _error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    """FastAPI's list of problems as one line naming the first field, as OpenAI's messages do."""
    problems = err.errors()
    if not problems:
        return "the request body is not valid", None
    first = problems[0]
    where = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(where) or None
    kind = first.get("type", "")
    if kind == "json_invalid":
        return (
            f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})",
            None,
        )
    if kind == "extra_forbidden":
        return f"unknown field {field!r}; see the API reference in docs/serving.md", field
    if kind == "missing":
        return f"{field} is required", field
    message = first.get("msg", "invalid value")
    return (f"{field}: {message}" if field else f"the request body: {message}"), field


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, err: APIError) -> JSONResponse:
        return _error_response(err)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, err: RequestValidationError) -> JSONResponse:
        message, field = _validation_message(err)
        return _error_response(APIError(400, message, param=field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        message = {404: f"no such endpoint: {request.method} {request.url.path}"}.get(
            err.status_code, str(err.detail)
        )
        return _error_response(APIError(err.status_code, message, headers=dict(err.headers or {})))

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(
            APIError(500, f"internal error ({type(err).__name__}); the server logged the details")
        )


def create_app(
    settings: ServeSettings, load: Callable[[ServeSettings], ServedModel] = load_served_model
) -> FastAPI:
    """The application for `settings`; `load` reads the model (tests may hand in their own)."""
    metrics = Metrics()
    engine = Engine(settings, metrics, load)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            engine.stop(timeout=settings.shutdown_timeout_s)
            log.info("stopped")

    app = FastAPI(
        title="t2t",
        version=version(),
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.server = ServerState(settings, engine, metrics)
    _install_error_handlers(app)
    for router in (completions.router, score.router, info.router):
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(ApiKeyGuard, api_key=settings.api_key)
    app.add_middleware(RequestLog, metrics=metrics)  # outermost: sees every request, 401s included
    return app


__all__ = ["create_app"]
