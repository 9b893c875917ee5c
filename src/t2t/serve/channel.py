"""Events from the scheduler thread to the request's coroutine, through the event loop.

The scheduler calls `emit` (any thread); the handler awaits `events()` or `collect()`. Every job of a
decoding step emits, so the hand-over is coalesced: emits post to one box per event loop, and only the
first emit since the loop last emptied it wakes the loop (one wake-up and one switch of the GIL per
step, not one per request). A handler that returns one
JSON body also watches its connection while it waits, so a client that gives up cancels its job
instead of leaving it to decode for nobody (a streaming response notices through Starlette, which
cancels the stream when the client disconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator

from starlette.requests import Request

from t2t.serve.jobs import Done, Event, Failed, Job

DISCONNECT_POLL_S = 0.25
CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection first"


class ClientGone(Exception):
    """The client closed its connection before the answer was ready."""


class _Postbox:
    """Deliveries waiting for one event loop; the loop is woken once per batch of them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.items: list[tuple[asyncio.Queue[list[Event]], list[Event]]] = []

    def post(self, queue: asyncio.Queue[list[Event]], events: list[Event]) -> None:
        with self.lock:
            self.items.append((queue, events))
            if len(self.items) > 1:
                return  # the loop is already called to empty the box
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is gone
            self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self.lock:
            items, self.items = self.items, []
        for queue, events in items:
            queue.put_nowait(events)


_POSTBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Postbox] = weakref.WeakKeyDictionary()


class Channel:
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        if loop not in _POSTBOXES:
            _POSTBOXES[loop] = _Postbox(loop)
        self.postbox = _POSTBOXES[loop]
        self.queue: asyncio.Queue[list[Event]] = asyncio.Queue()

    def emit(self, events: list[Event]) -> None:
        """Thread-safe."""
        self.postbox.post(self.queue, events)

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the job, up to its Done or Failed."""
        while True:
            for event in await self.queue.get():
                yield event
                if isinstance(event, (Done, Failed)):
                    return

    async def collect(self, request: Request, job: Job) -> list[Event]:
        """All events of the job; raises ClientGone (and cancels the job) if the client leaves first."""
        collected: list[Event] = []
        while True:
            try:
                events = await asyncio.wait_for(self.queue.get(), DISCONNECT_POLL_S)
            except TimeoutError:
                if await request.is_disconnected():
                    job.cancel()
                    raise ClientGone from None
                continue
            collected.extend(events)
            if any(isinstance(e, (Done, Failed)) for e in events):
                return collected


__all__ = ["CLIENT_CLOSED", "Channel", "ClientGone"]
