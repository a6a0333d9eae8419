"""Reading a file in a worker process, within a time and a memory bound.

A hostile file (a parser, decompression or render bomb) must cost the reading of that one file,
not the ingest or the web server: :class:`IsolatedReader` runs
:func:`rag.index.documents.load_file` in a child process whose memory is capped and which is
killed when it runs past its time. Either way the file is refused with the bound named, as an
:class:`InputError`, before anything reached the index. Progress and warnings come back over a
pipe as they are made.

One worker serves the files of an ingest in turn (a fork costs 10 ms from a small process and
20 ms from one holding 1 GB, more than reading a small file), each file with a time and memory
budget of its own; a file that exceeds one costs the worker its life, and the next file gets a
new worker.

The start method is ``fork``: a child starts at once, with the readers imported
(and, in tests, patched). Its hazards are met: a lock that another thread of the parent held at
the fork stays held in the child, but the readers take none of the parent's locks, and the OCR
engine, whose threads do not survive a fork, is loaded anew in the child
(:mod:`rag.index.ocr`); a hang would still end at the timeout. ``spawn`` pays an interpreter
and its imports for every file (0.15 s for plain text, about 1 s with every reader), and
``spawn`` and ``forkserver`` run the main script again in each child (Python 3.11 does not
preload ``__main__`` in the fork server): every script that ingests would have to guard its code.

The memory cap is ``RLIMIT_DATA`` (private writable memory: heap, buffers, stacks) over what the
worker holds when a file starts (a copy of the parent's at first), not ``RLIMIT_AS``: the address
space also counts reservations never used, such as the 64 MB malloc arena of each thread, and the
OCR runtime starts a thread per core, so an address-space cap refuses OCR on a machine with many
cores.
"""

from __future__ import annotations

import functools
import importlib
import multiprocessing
import resource
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.index.documents import Document, load_file
from rag.index.limits import ParseLimits
from rag.progress import ProgressCallback

Warn = Callable[[str], None]

_CONTEXT = multiprocessing.get_context("fork")
# What load_file imports on demand, but OCR (its runtime is loaded only for scans, in the worker).
_READERS = ("rag.index.markdown", "rag.index.pdf", "bs4", "docx", "pypdf", "pdfplumber", "pypdfium2")


class IsolatedReader:
    """Reads files with :func:`~rag.index.documents.load_file` in a worker process, each file
    within ``limits``; a context manager (leaving it ends the worker)."""

    def __init__(self, limits: ParseLimits = ParseLimits()) -> None:
        self.limits = limits
        self._worker: BaseProcess | None = None
        self._connection: Connection | None = None

    def __enter__(self) -> IsolatedReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, path: Path, progress: ProgressCallback | None = None, warn: Warn | None = None) -> list[Document]:
        """The documents of ``path``; a file that cannot be read, or that runs past
        ``limits.timeout_s`` (counted again from each OCR'd page) or needs more than
        ``limits.memory_mb``, or whose reader dies, is an :class:`InputError` naming the file."""
        connection = self._connect()
        connection.send(path)
        kind, payload = _relay(path, connection, self.limits, progress, warn)
        if kind == "documents":
            return list(payload)
        if kind != "error":  # out of time or memory, or dead: this worker is done
            code = self.close()
            payload = payload or f"{path.name}: the reader crashed ({_exit_reason(code)}); the file was skipped"
        raise InputError(payload)

    def close(self) -> int | None:
        """End the worker (there may be none); its exit code."""
        worker, connection, self._worker, self._connection = self._worker, self._connection, None, None
        if worker is None or connection is None:
            return None
        connection.close()
        if worker.is_alive():
            worker.kill()
        worker.join()
        code = worker.exitcode
        worker.close()
        return code

    def _connect(self) -> Connection:
        """The connection to the worker, started now if there is none."""
        if self._connection is None:
            _import_readers()
            parent_end, child_end = _CONTEXT.Pipe()
            self._worker = _CONTEXT.Process(target=_serve, args=(child_end, self.limits), name="rag-reader", daemon=True)
            self._worker.start()
            child_end.close()  # the worker holds the only other end now: its death ends the pipe
            self._connection = parent_end
        return self._connection


@functools.cache
def _import_readers() -> None:
    """Import every reader here, once, so that each worker starts with them: what a worker imports
    dies with it (importing python-docx or pypdf takes 0.1-0.2 s)."""
    for module in _READERS:
        importlib.import_module(module)


def load_isolated(
    path: Path, progress: ProgressCallback | None = None, warn: Warn | None = None, limits: ParseLimits = ParseLimits()
) -> list[Document]:
    """One file read by :meth:`IsolatedReader.read`, in a worker of its own."""
    with IsolatedReader(limits) as reader:
        return reader.read(path, progress, warn)


def _relay(
    path: Path, connection: Connection, limits: ParseLimits, progress: ProgressCallback | None, warn: Warn | None
) -> tuple[str, Any]:
    """Pass on the worker's progress and warnings until its answer comes: ``("documents", [...])``
    or ``(kind, message)`` for a refusal, ``kind`` one of error, memory, timeout, died."""
    deadline = time.monotonic() + limits.timeout_s
    while (left := deadline - time.monotonic()) > 0 and connection.poll(left):
        try:
            kind, payload = connection.recv()
        except EOFError:
            return "died", ""
        if kind == "progress":
            deadline = time.monotonic() + limits.timeout_s  # a long scan is slow, not stuck
            if progress:
                progress(*payload)
        elif kind == "warning":
            if warn:
                warn(payload)
        else:
            return kind, payload
    return "timeout", f"{path.name}: parsing took longer than {limits.timeout_s:g} s (RAG_PARSE_TIMEOUT); the file was skipped"


def _exit_reason(code: int | None) -> str:
    return f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"


def _serve(connection: Connection, limits: ParseLimits) -> None:
    """The worker: read each path it is sent, with a fresh memory budget, and answer."""
    while True:
        try:
            path = connection.recv()
        except EOFError:  # the parent is gone
            return
        _cap_memory(limits.memory_mb)
        connection.send(_read(path, connection, limits))


def _read(path: Path, connection: Connection, limits: ParseLimits) -> tuple[str, Any]:
    """The worker's answer for one file, its progress and warnings sent on the way."""
    try:
        documents = load_file(
            path, lambda *done: connection.send(("progress", done)), lambda text: connection.send(("warning", text)), limits
        )
    except InputError as exc:
        return "error", str(exc)
    except MemoryError:
        why = f"parsing needed more than {limits.memory_mb} MB of memory (RAG_PARSE_MEMORY_MB)"
        return "memory", f"{path.name}: {why}; the file was skipped"
    except Exception as exc:  # a reader's own failure on a malformed file: refuse the file, say why
        return "error", f"{path.name}: cannot read this file ({type(exc).__name__}: {exc})"
    return "documents", documents


def _cap_memory(memory_mb: int) -> None:
    """Let this process take at most ``memory_mb`` more private writable memory than it holds now
    (the soft limit, so that it can be set again for the next file)."""
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = _data_bytes() + (memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_DATA, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def _data_bytes() -> int:
    """This process's private writable memory now (``VmData``), 0 where /proc does not tell."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            line = next(line for line in status if line.startswith("VmData:"))
    except (OSError, StopIteration):
        return 0
    return int(line.split()[1]) << 10
