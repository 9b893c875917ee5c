"""Serving: an OpenAI-compatible HTTP API (completions, chat, scoring) with batching, and a playground page.

    t2t serve --model runs/quickstart/model          # the command (needs the serve extra)
    app = create_app(ServeSettings(model="DIR"))     # the FastAPI application, for your own uvicorn

Needs `pip install 't2t[serve]'` (FastAPI, uvicorn, prometheus_client, Jinja2). See docs/serving.md.
"""

from t2t.serve.app import create_app
from t2t.serve.server import serve
from t2t.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "serve"]
