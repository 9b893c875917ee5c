"""Run the application on uvicorn until Ctrl-C or SIGTERM.

The model loads while the server already listens (/health says 503 "loading" until it is ready); if
it cannot be loaded, the server stops and the command reports why. uvicorn handles both signals: it
stops accepting connections, lets in-flight requests (streams included) finish for up to `shutdown_timeout_s`, cancels what is left, then runs the application's
shutdown, which stops the scheduler. A second Ctrl-C quits at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import uvicorn

from t2t.errors import T2TError
from t2t.serve.app import create_app
from t2t.serve.settings import ServeSettings

log = logging.getLogger("t2t.serve")
LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def _ensure_logging() -> None:
    """The request lines must show somewhere: the t2t command routes the `t2t` logger to stderr; a
    script that calls serve() without any logging set up gets a plain stderr handler for it."""
    t2t_logger = logging.getLogger("t2t")
    if not t2t_logger.handlers and not logging.getLogger().handlers:
        logging.basicConfig(format=LOG_FORMAT)
    if t2t_logger.getEffectiveLevel() > logging.INFO and not t2t_logger.handlers:
        t2t_logger.setLevel(logging.INFO)


def serve(settings: ServeSettings) -> None:
    """Serve until stopped; raises T2TError when the model cannot be loaded or the port is taken."""
    _ensure_logging()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",  # its start-up lines say what t2t.serve's say; its warnings and errors show
        access_log=False,  # t2t.serve logs one line per request with its tokens and time
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s) or None,
        log_config=None,  # keep the application's logging as it is
    )
    server = uvicorn.Server(config)
    engine = app.state.server.engine

    def stop_if_load_fails() -> None:
        engine.wait_loaded()
        if engine.load_error is not None:
            server.should_exit = True

    threading.Thread(target=stop_if_load_fails, name="t2t-serve-load-watch", daemon=True).start()
    log.info(
        "serving %s on http://%s:%d (the playground at /); loading the model",
        settings.model,
        settings.host,
        settings.port,
    )
    with _quiet_exit():
        server.run()
    if engine.load_error is not None:
        raise T2TError(f"{settings.model}: the model could not be loaded ({engine.load_error})")
    if not server.started:
        raise T2TError(f"could not listen on {settings.host}:{settings.port}; is the port taken? try --port")


@contextlib.contextmanager
def _quiet_exit() -> Iterator[None]:
    """uvicorn re-raises the signal that stopped it once its graceful shutdown is done, which kills the
    process with that signal (or raises KeyboardInterrupt). A stop that went as planned should end with
    exit status 0: ignoring both signals around `run` makes that re-raise a no-op (uvicorn installs its
    own handlers meanwhile, so a second Ctrl-C still forces the exit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["serve"]
