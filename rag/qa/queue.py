"""A bounded FIFO for LLM work: one generation at a time, everyone else told where they stand.

One model is in memory and it generates for one caller at a time. Callers (web sessions, API
requests, MCP tools) take a :class:`Ticket` in arrival order; ticket 0 holds the model, the
others wait. A full queue refuses at once (:class:`QueueFull`, HTTP 429), and a caller that
leaves (a closed browser tab, a dropped connection) gives up its place. Retrieval never queues;
searches and embeddings only count against a :class:`WorkLimit` (:class:`Busy` past it, also 429).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from rag.errors import RagError

DEFAULT_CAPACITY = 8
"""Requests that may hold or wait for the model at once; one more is refused."""
DEFAULT_WORK_LIMIT = 4
"""Searches and embeddings that may run at once (``RAG_MAX_CONCURRENT_WORK``); one more is refused."""


class Busy(RagError):
    """Too much work at once; try again in about ``retry_after_s`` seconds (``code``: for the API)."""

    code = "server_busy"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QueueFull(Busy):
    """Every place in the queue is taken; try again in about ``retry_after_s`` seconds."""

    code = "queue_full"

    def __init__(self, capacity: int, retry_after_s: int) -> None:
        super().__init__(f"the answer queue is full ({capacity} requests); try again in about {retry_after_s} s", retry_after_s)


class WorkLimit:
    """At most ``limit`` searches or embeddings at once (work that never waits for the LLM); one more is refused."""

    def __init__(self, limit: int = DEFAULT_WORK_LIMIT) -> None:
        if limit < 1:
            raise ValueError("the work limit needs room for at least one request")
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot while the block runs; :class:`Busy` at once when every slot is taken."""
        if not self._slots.acquire(blocking=False):
            raise Busy(f"the server is busy ({self.limit} searches or embeddings at once); try again in about 1 s", 1)
        try:
            yield
        finally:
            self._slots.release()


class Ticket:
    """A place in the queue; use it as a context manager so the place is always given up."""

    def __init__(self, queue: GenerationQueue) -> None:
        self._queue = queue

    def position(self) -> int:
        """0 when this ticket holds the model, else how many requests are ahead of it."""
        return self._queue.position(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until this ticket holds the model (True) or ``timeout`` seconds pass (False)."""
        return self._queue.wait_for_turn(self, timeout)

    def leave(self) -> None:
        """Give the place up (finished, failed or abandoned); the next ticket gets the model."""
        self._queue.leave(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.leave()


class GenerationQueue:
    """First come, first served access to the one model, for at most ``capacity`` requests."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, seconds_per_answer: float = 10.0) -> None:
        if capacity < 1:
            raise ValueError("the queue needs room for at least one request")
        self.capacity = capacity
        self.seconds_per_answer = seconds_per_answer
        self._tickets: deque[Ticket] = deque()
        self._changed = threading.Condition()

    def enter(self) -> Ticket:
        """A new ticket at the back; :class:`QueueFull` when ``capacity`` tickets are out."""
        with self._changed:
            if len(self._tickets) >= self.capacity:
                raise QueueFull(self.capacity, max(1, round(self.seconds_per_answer * len(self._tickets))))
            ticket = Ticket(self)
            self._tickets.append(ticket)
            return ticket

    def waiting(self) -> int:
        """Tickets out now (holding or waiting for the model)."""
        with self._changed:
            return len(self._tickets)

    def position(self, ticket: Ticket) -> int:
        with self._changed:
            try:
                return self._tickets.index(ticket)
            except ValueError:
                raise RagError("this request already left the queue") from None

    def wait_for_turn(self, ticket: Ticket, timeout: float | None) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: bool(self._tickets) and self._tickets[0] is ticket, timeout)

    def leave(self, ticket: Ticket) -> None:
        with self._changed:
            if ticket in self._tickets:
                self._tickets.remove(ticket)
                self._changed.notify_all()
