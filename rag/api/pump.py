"""Run a blocking event iterator on a worker thread and read it from async code.

The pipeline's answer stream blocks (queue waits, LLM tokens). :func:`pump` runs it on its own
thread; when the reader goes away (a client disconnects, a request is cancelled) the worker
closes the iterator at its next step, which gives up the request's place in the queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


async def pump(
    events: Iterator[T], disconnected: Callable[[], Awaitable[bool]] | None = None, poll_s: float = 0.5
) -> AsyncIterator[T]:
    """Yield the items of ``events`` as the worker produces them; exceptions are re-raised here."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def send(item: object) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is reading
            stop.set()

    def work() -> None:
        try:
            for item in events:
                send(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the reader
            send(exc)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            send(_END)

    worker = threading.Thread(target=work, name="answer-stream", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = await asyncio.wait_for(inbox.get(), poll_s)
            except asyncio.TimeoutError:
                if disconnected is not None and await disconnected():
                    return
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
