"""Background data workers: the input pipeline runs beside training instead of inside its thread.

    stream = prefetch(make_stream(...), workers=2)   # or Trainer(..., data_workers=2)
    for batch in stream: ...                         # state_dict() / load_state_dict() as before

With `workers` = N >= 1 a batch stream is read ahead by a background thread (reading the examples,
packing rows, collating tensors: light work) while N worker processes featurise the examples
(tokenising, span corruption, MLM masking: the heavy part) in chunks, in order, a bounded number of
chunks ahead. Featurising depends only on an example and its index (t2t.data.features), so the batches
are exactly those of the stream run in the training thread (tested, and the SIGKILL test resumes a run
with workers bit-identically).

Exact resume: each batch comes out with the stream's state right after it (taken by the background
thread before it makes the next one); `state_dict()` returns the state of the last batch handed out,
so the batches made ahead and not yet trained on are read again after a resume, not lost.

Worker processes are forked (Linux) from the process that starts the stream, so nothing needs to be
pickled but each chunk of examples and its pieces; where fork does not exist the featurising stays in
the background thread. Next-sentence prediction (whose negatives depend on earlier documents) and
streams other than t2t's BatchStream get the background thread alone. `close()` (the Trainer calls it
when training ends) stops the thread and the processes; they are daemons, so they end with the
program in any case.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import torch

from t2t.data.stream import BatchStream, StreamStats
from t2t.errors import ConfigError

CHUNK = 8  # examples per task sent to a worker process
PREFETCH = 4  # batches made ahead of training
CLOSE_GRACE = 10.0  # seconds the workers get to finish their chunks in flight when a stream closes
_END = object()

# Featurizers the worker processes inherit when they are forked: key -> Featurizer.
_FEATURIZERS: dict[int, Any] = {}


def _init_worker() -> None:
    torch.set_num_threads(1)  # featurising is per-example Python and small tensor ops
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the training process, which stops us
    _die_with_parent()


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the training process dies, even by SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _featurize_chunk(key: int, chunk: list[tuple[int, dict]]) -> list[tuple[list, dict]]:
    """In a worker: each (index, example)'s pieces and the featurizer counters it added."""
    featurizer = _FEATURIZERS[key]
    out = []
    for index, example in chunk:
        featurizer.stats.clear()
        pieces = featurizer(example, index)
        out.append((pieces, dict(featurizer.stats)))
    return out


class _Pool:
    """N forked worker processes featurising chunks of examples in order, a bounded window ahead."""

    def __init__(self, workers: int, stop: threading.Event) -> None:
        self.pool = mp.get_context("fork").Pool(workers, initializer=_init_worker)
        self.window = 2 * workers
        self.stop = stop

    def featurizer(self, key: int) -> Any:
        def featurize(examples: Iterator[dict], start: int) -> Iterable[tuple[list, dict | None]]:
            numbered = enumerate(examples, start)
            pending: deque = deque()

            def submit() -> bool:
                chunk = list(islice(numbered, CHUNK))
                if chunk:
                    pending.append(self.pool.apply_async(_featurize_chunk, (key, chunk)))
                return bool(chunk)

            for _ in range(self.window):
                if not submit():
                    break
            while pending:
                head = pending.popleft()
                while True:
                    try:
                        results = head.get(timeout=0.2)
                        break
                    except mp.TimeoutError:
                        if self.stop.is_set():
                            return
                submit()
                yield from results

        return featurize

    def close(self) -> None:
        """Let the workers finish the few chunks in flight and exit on their own; kill only those still
        busy after CLOSE_GRACE seconds. Pool.terminate() alone kills workers mid-write: one that dies
        holding the result queue's lock leaves the pool's task thread blocked on that lock, and
        terminate() then waits for that thread for ever (CPython's multiprocessing; it hung `t2t`
        runs and the data benchmark here, reproduced in 3 of 4 runs of 200 open/close cycles)."""
        self.pool.close()  # no new chunks; the workers exit after the ones queued
        deadline = time.monotonic() + CLOSE_GRACE
        for process in list(self.pool._pool):  # the Pool's processes: no public accessor
            process.join(max(0.0, deadline - time.monotonic()))
        if any(process.exitcode is None for process in self.pool._pool):
            self.pool.terminate()
        self.pool.join()


def _batch_streams(stream: Any) -> list[BatchStream]:
    """The BatchStreams inside a stream: itself, or those a wrapper (ReplayStream) combines."""
    if isinstance(stream, BatchStream):
        return [stream]
    return [
        s
        for s in (getattr(stream, "main", None), getattr(stream, "replay", None))
        if isinstance(s, BatchStream)
    ]


class Prefetched:
    """A batch stream read ahead in a background thread, featurised by `workers` processes (module doc)."""

    def __init__(self, stream: Any, workers: int = 1, prefetch: int = PREFETCH) -> None:
        if workers < 0:
            raise ConfigError(f"workers={workers} should be 0 or more")
        if prefetch < 1:
            raise ConfigError(f"prefetch={prefetch} should be at least 1")
        self.stream, self.workers, self.prefetch = stream, workers, prefetch
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: _Pool | None = None
        self._keys: list[int] = []
        self._state: dict[str, Any] | None = None  # after the last batch handed out
        self._stats: Any = None
        self._done = False

    def __iter__(self) -> Prefetched:
        return self

    # ---- the background side -------------------------------------------------------------------------
    def _start(self) -> None:
        inner = [s for s in _batch_streams(self.stream) if s.parallel_featurizing]
        if self.workers and inner and "fork" in mp.get_all_start_methods():
            # Forked children print a warning when the parent's tokenizers already ran in parallel.
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            for s in inner:
                key = id(s.featurizer)
                _FEATURIZERS[key] = s.featurizer
                self._keys.append(key)
            self._pool = _Pool(self.workers, self._stop)  # forked now: the featurizers are inherited
            for s in inner:
                s.featurize_with(self._pool.featurizer(id(s.featurizer)))
        self._thread = threading.Thread(target=self._run, name="t2t-data", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for batch in self.stream:
                state = self.stream.state_dict() if hasattr(self.stream, "state_dict") else None
                stats = _copy_stats(getattr(self.stream, "stats", None))
                if not self._put((batch, state, stats)):
                    return
            self._put(_END)
        except BaseException as err:  # handed to the training thread, which raises it
            self._put(err)

    # ---- the training side ---------------------------------------------------------------------------
    def __next__(self) -> dict[str, torch.Tensor]:
        if self._done:
            raise StopIteration
        if self._thread is None:
            self._start()
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._done = True
            self.close()
            raise item
        batch, self._state, self._stats = item
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The position after the last batch handed out (batches made ahead are made again on resume)."""
        return self._state if self._state is not None else self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._thread is not None:
            raise RuntimeError("load_state_dict on a stream already reading ahead; load it before iterating")
        self.stream.load_state_dict(state)
        self._state = None

    @property
    def stats(self) -> Any:
        """The counters as of the last batch handed out."""
        return self._stats if self._stats is not None else getattr(self.stream, "stats", {})

    def close(self) -> None:
        """Stop the background thread and the worker processes (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        for key in self._keys:
            _FEATURIZERS.pop(key, None)
        self._keys = []
        for s in _batch_streams(self.stream):
            s.featurize_with(None)

    def __del__(self, _finalizing: Any = sys.is_finalizing) -> None:
        if not _finalizing():  # at interpreter shutdown the daemons end with the program
            self.close()


def _copy_stats(stats: Any) -> Any:
    if isinstance(stats, StreamStats):
        return StreamStats(stats)
    return dict(stats) if isinstance(stats, dict) else stats


def prefetch(stream: Any, workers: int, prefetch: int = PREFETCH) -> Any:
    """`stream` read ahead with `workers` featurising processes, or `stream` itself when workers is 0."""
    if workers == 0:
        return stream
    if not hasattr(stream, "state_dict"):
        raise ConfigError("data workers need a stream with state_dict() (for exact resume)")
    return Prefetched(stream, workers, prefetch)


__all__ = ["CHUNK", "PREFETCH", "Prefetched", "prefetch"]
