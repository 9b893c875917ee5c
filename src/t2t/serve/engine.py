"""The scheduler: one thread owns the model; requests queue for it and are decoded in batches.

Each turn of its loop (a "tick"):

1. admit: waiting jobs, oldest first, start while there is room. A greedy / sampling job joins a new
   cohort with every waiting job of its group that fits (`max_batch_size` answers in flight in all,
   `max_cohorts` cohorts at once); beam-search and scoring jobs of one group run at once, in one call.
2. step: every cohort decodes one token for all its rows.

So a request that arrives while others are decoding starts at the next tick, beside them, instead of
waiting for the running batch to end; an answer that ends (or whose client leaves) is handed out at
once, and a cohort stops as soon as all of its answers have ended. What this is not: rows of different
cohorts are not merged into one tensor, and a row that ended keeps its place in its cohort's tensor
until the cohort stops (t2t's generation API decodes a fixed batch), see docs/serving.md.

An idle server that receives a request waits `batch_wait_ms` for others before it starts, so requests
that arrive together are decoded together. While cohorts decode, a new cohort waits until a cohort's
share of the batch (max_batch_size / max_cohorts answers) is waiting, or its oldest request has waited
`join_wait_ms`: each cohort costs a forward pass per step, so many small ones would waste them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import torch

from t2t.serve.batching import Cohort, run_beam, run_scores
from t2t.serve.errors import APIError
from t2t.serve.jobs import Failed, GenerateJob, Job, ScoreJob
from t2t.serve.loader import ServedModel, load_served_model
from t2t.serve.metrics import Metrics
from t2t.serve.settings import ServeSettings

log = logging.getLogger("t2t.serve")
RETRY_AFTER_S = 1


class Engine:
    """`start()` loads the model on the scheduler thread; `submit(job)` queues work; `stop()` ends it."""

    def __init__(
        self,
        settings: ServeSettings,
        metrics: Metrics | None = None,
        load: Callable[[ServeSettings], ServedModel] = load_served_model,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._load = load
        self.served: ServedModel | None = None
        self.load_error: str | None = None
        self._pending: deque[Job] = deque()
        self._cohorts: list[Cohort] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._loaded = threading.Event()
        self._thread = threading.Thread(target=self._run, name="t2t-serve-scheduler", daemon=True)
        self.metrics.watch(lambda: len(self._pending), self.live_rows)

    # ---- the request side (event loop thread) ---------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self.served is not None and not self._stopping

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def submit(self, job: Job) -> None:
        """Queue a job, or refuse it: 503 while loading or stopping, 429 when the queue is full."""
        if self.served is None or self._stopping:
            raise APIError(503, "the server is not ready (loading the model, or shutting down); retry soon")
        with self._cond:
            room = self.settings.max_batch_size - self.live_rows() - sum(j.rows for j in self._pending)
            if len(self._pending) >= self.settings.max_queue and job.rows > room:
                raise APIError(
                    429,
                    f"the server is busy: {len(self._pending)} requests are waiting (--max-queue "
                    f"{self.settings.max_queue}); retry after {RETRY_AFTER_S} s",
                    code="queue_full",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            self._pending.append(job)
            self._cond.notify()

    def live_rows(self) -> int:
        return sum(c.live_rows() for c in list(self._cohorts))

    def queue_depth(self) -> int:
        return len(self._pending)

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new jobs, cancel what is left (each gets a 503) and end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # ---- the scheduler thread -------------------------------------------------------------------------
    def _run(self) -> None:
        if self.settings.threads is not None:
            torch.set_num_threads(self.settings.threads)  # this thread's (and later threads') count
        try:
            self.served = self._load(self.settings)
        except Exception as err:  # the CLI shows it; /health says so
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("could not load the model (%s)", self.load_error)
            return
        finally:
            self._loaded.set()
        try:
            while True:
                try:
                    if not self._tick():
                        break
                except Exception:  # a bug must not stop the server: fail what was in flight, go on
                    log.exception("the scheduler failed; the requests in flight were answered 500")
                    self._cancel_all(
                        APIError(500, "internal error while decoding; the server logged it"), pending=False
                    )
        finally:
            self._cancel_all(APIError(503, "the server is shutting down; the request was cancelled"))

    def _tick(self) -> bool:
        with self._cond:
            while not self._pending and not self._cohorts and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return False
            idle = not self._cohorts
        if idle and self.settings.batch_wait_ms > 0:
            time.sleep(self.settings.batch_wait_ms / 1000)  # let requests that arrive together gather
        self._admit()
        for cohort in list(self._cohorts):
            self.metrics.batch_size.observe(cohort.rows)
            cohort.step()
        self._cohorts = [c for c in self._cohorts if not c.done]
        return True

    def _admit(self) -> None:
        """Start waiting jobs, oldest first, while there is room; stop at the first that must wait."""
        served = self.served
        assert served is not None
        while True:
            with self._cond:
                while self._pending and self._pending[0].cancelled:
                    self._pending.popleft()
                if not self._pending:
                    return
                head = self._pending[0]
                if isinstance(head, ScoreJob):
                    group = self._take(self._joins(head))
                elif isinstance(head, GenerateJob) and head.beam:
                    group = self._take(self._joins(head), limit=self.settings.max_batch_size)
                else:
                    room = self.settings.max_batch_size - self.live_rows()
                    if len(self._cohorts) >= self.settings.max_cohorts or head.rows > room:
                        return
                    if self._cohorts and not self._worth_a_cohort(head, room):
                        return
                    group = self._take(self._joins(head), limit=room)
            self._run_group(served, group)

    def _worth_a_cohort(self, head: Job, room: int) -> bool:
        """While other cohorts decode, a new one costs a forward pass per step of its own: let waiting
        requests gather until a cohort's share of rows waits, or the oldest has waited join_wait_ms."""
        joins = self._joins(head)
        waiting = sum(job.rows for job in self._pending if joins(job))
        share = min(room, max(1, self.settings.max_batch_size // self.settings.max_cohorts))
        waited = time.perf_counter() - head.arrived
        return waiting >= share or waited * 1000 >= self.settings.join_wait_ms

    @staticmethod
    def _joins(head: Job) -> Callable[[Job], bool]:
        """Which jobs may run with `head`: those of its kind and group."""
        group = head.group
        return lambda job: type(job) is type(head) and job.group == group

    def _take(self, fits: Callable[[Job], bool], limit: int | None = None) -> list[Job]:
        """Remove and return the waiting jobs that `fits` accepts (in order), up to `limit` rows; the
        head always goes (a job larger than the limit on its own still runs)."""
        taken: list[Job] = []
        rows = 0
        kept: deque[Job] = deque()
        for job in self._pending:
            if not job.cancelled and fits(job) and (not taken or limit is None or rows + job.rows <= limit):
                taken.append(job)
                rows += job.rows
            elif not job.cancelled:
                kept.append(job)
        self._pending = kept
        return taken

    def _run_group(self, served: ServedModel, group: list[Job]) -> None:
        scoring = [job for job in group if isinstance(job, ScoreJob)]
        generating = [job for job in group if isinstance(job, GenerateJob)]
        if scoring:
            run_scores(served, scoring)
        elif generating and generating[0].beam:
            self.metrics.batch_size.observe(run_beam(served, generating))
        elif generating:
            self._cohorts.append(Cohort(served, generating))

    def _cancel_all(self, error: APIError, pending: bool = True) -> None:
        """Answer `error` to every job decoding (and, with pending, every job waiting)."""
        waiting: list[Job] = []
        if pending:
            with self._cond:
                waiting, self._pending = list(self._pending), deque()
        for job in waiting:
            job.emit([Failed(error)])
        for cohort in self._cohorts:
            cohort.cancel(error)
        self._cohorts = []


__all__ = ["Engine"]
