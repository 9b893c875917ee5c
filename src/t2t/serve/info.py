"""GET /v1/models, /health, /metrics and the playground page (/)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from t2t.serve.state import served_model, server

router = APIRouter()
PLAYGROUND = "playground.html"


@router.get("/v1/models")
async def models(request: Request) -> JSONResponse:
    served = served_model(request)
    config = served.model.config
    card = {
        "id": served.name,
        "object": "model",
        "created": served.created,
        "owned_by": "t2t",
        # t2t's additions, for clients such as the playground
        "arch": config.arch,
        "max_positions": served.max_positions,
        "chat": served.chat_template is not None and not served.encoder_decoder,
    }
    return JSONResponse({"object": "list", "data": [card]})


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """200 once the model is loaded and the server takes requests; 503 before (and after a failed load)."""
    engine = server(request).engine
    if engine.ready:
        return JSONResponse({"status": "ok", "model": engine.served.name if engine.served else None})
    if engine.load_error is not None:
        return JSONResponse({"status": "error", "error": engine.load_error}, status_code=503)
    return JSONResponse({"status": "loading"}, status_code=503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    state = server(request)
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


@lru_cache(maxsize=1)
def playground_page() -> str:
    return files("t2t.serve").joinpath(PLAYGROUND).read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def playground() -> HTMLResponse:
    """One self-contained page (no build step, nothing loaded from elsewhere) to try the model."""
    return HTMLResponse(
        playground_page(), headers={"Content-Security-Policy": "default-src 'self' 'unsafe-inline'"}
    )


__all__ = ["router"]
