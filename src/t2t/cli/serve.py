"""`t2t serve`: an OpenAI-compatible HTTP server for a model directory, with a playground page."""

from __future__ import annotations

import argparse

from t2t.cli.common import example_epilog, int_at_least, non_negative_float, non_negative_int, positive_int
from t2t.cli.generate import QUANTIZE_CHOICES

SERVE_EXTRA = "pip install 't2t[serve]'"
SERVE_MODULES = ("fastapi", "uvicorn", "prometheus_client", "jinja2")
EXAMPLE = (
    "t2t serve --model runs/quickstart/model",
    "curl http://127.0.0.1:8000/v1/completions -H 'Content-Type: application/json' \\\n"
    '    -d \'{"prompt": "classify sentiment: What a joy!", "max_tokens": 8, "temperature": 0}\'',
    "open http://127.0.0.1:8000/ in a browser for the playground",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP: OpenAI-compatible completions, chat and scoring, and a playground page",
        description="Serve the model of a checkpoint directory with an OpenAI-compatible API (POST "
        "/v1/completions, /v1/chat/completions, /v1/score; GET /v1/models, /health, /metrics) and a "
        "playground page at /. Requests that arrive together are decoded together. Needs the serve extra "
        f"({SERVE_EXTRA}). Ctrl-C or SIGTERM stops it after in-flight requests finish.",
        epilog=example_epilog(*EXAMPLE),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory (model + tokenizer)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_at_least(0, 65535), default=8000, metavar="N", help="TCP port (8000)")
    p.add_argument(
        "--api-key", default=None, metavar="KEY", help="require 'Authorization: Bearer KEY' on /v1/"
    )
    p.add_argument("--served-model-name", default=None, metavar="NAME", help="the model's name in the API")
    p.add_argument(
        "--max-batch-size", type=positive_int, default=32, metavar="N", help="answers decoded at once (32)"
    )
    p.add_argument(
        "--max-queue", type=non_negative_int, default=256, metavar="N", help="requests that may wait (256)"
    )
    p.add_argument(
        "--max-cohorts",
        type=positive_int,
        default=4,
        metavar="N",
        help="batches decoded in turn, step by step (4)",
    )
    p.add_argument(
        "--batch-wait-ms",
        type=non_negative_float,
        default=5.0,
        metavar="MS",
        help="an idle server waits this long for more requests to batch (5)",
    )
    p.add_argument(
        "--join-wait-ms",
        type=non_negative_float,
        default=20.0,
        metavar="MS",
        help="while batches decode, waiting requests gather this long before starting one of their own (20)",
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="weights' dtype (float32)",
    )
    p.add_argument(
        "--quantize",
        choices=QUANTIZE_CHOICES,
        default=None,
        help="int8 weights: int8 (= int8-dynamic, the fastest on CPU) or int8-weight-only "
        "(docs/generation.md: reduced precision)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (cpu)")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="torch threads for decoding (default: the CPU cores less one, which the HTTP side gets)",
    )
    p.add_argument(
        "--shutdown-timeout",
        type=non_negative_float,
        default=10.0,
        metavar="S",
        help="on Ctrl-C / SIGTERM, seconds in-flight requests get to finish (10)",
    )
    p.set_defaults(handler=run)


def _check_extra() -> None:
    """Say which extra to install rather than show an ImportError."""
    from t2t.utils.extras import require

    for module in SERVE_MODULES:
        require(module, "serve", "t2t serve")


def run(args: argparse.Namespace) -> int:
    _check_extra()
    from t2t.hub import resolve
    from t2t.serve.server import serve
    from t2t.serve.settings import ServeSettings
    from t2t.utils.devices import resolve_device

    resolve(args.model)  # a missing directory fails now, not after the server started
    resolve_device(args.device)
    settings = ServeSettings(
        model=args.model,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        served_model_name=args.served_model_name,
        max_batch_size=args.max_batch_size,
        max_queue=args.max_queue,
        max_cohorts=args.max_cohorts,
        batch_wait_ms=args.batch_wait_ms,
        join_wait_ms=args.join_wait_ms,
        dtype=args.dtype,
        quantize=args.quantize,
        device=args.device,
        **({"threads": args.threads} if args.threads else {}),
        shutdown_timeout_s=args.shutdown_timeout,
    )
    serve(settings)
    return 0
