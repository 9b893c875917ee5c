"""The server's Prometheus metrics (`GET /metrics`), kept by prometheus_client in a registry of their own,
so two servers in one process (the tests) never share counters."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
disable_created_metrics()  # no `*_created` timestamp series beside every counter: noise for a scrape


class Metrics:
    """Counters and histograms the request handlers and the scheduler update."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("t2t_requests", "Requests answered, by endpoint.", ["endpoint"], registry=r)
        self.errors = Counter(
            "t2t_request_errors", "Requests refused or failed, by status code.", ["code"], registry=r
        )
        self.prompt_tokens = Counter("t2t_prompt_tokens", "Prompt tokens of answered requests.", registry=r)
        self.generated_tokens = Counter("t2t_generated_tokens", "Tokens generated.", registry=r)
        self.queue_depth = Gauge("t2t_queue_depth", "Requests waiting for a place in a batch.", registry=r)
        self.active = Gauge("t2t_active_answers", "Answers being decoded now.", registry=r)
        self.batch_size = Histogram(
            "t2t_batch_size", "Rows of each batched decoding step.", buckets=BATCH_BUCKETS, registry=r
        )
        self.latency = Histogram(
            "t2t_request_latency_seconds",
            "Time from a request's arrival to its last byte, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "t2t_time_to_first_token_seconds",
            "Time from a generation request's arrival to its first token.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def watch(self, queue_depth: Callable[[], float], active: Callable[[], float]) -> None:
        """Read the two gauges from the scheduler when scraped."""
        self.queue_depth.set_function(queue_depth)
        self.active.set_function(active)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["Metrics"]
