"""Folder sync: make an index match a folder, once or whenever the folder changes.

A sync is an ingest of the folder that also removes the sources inside it whose files are gone,
in one commit (:func:`rag.index.ingest.ingest` with ``prune``): new and changed files go in,
unchanged ones are skipped by hash, and an interrupted sync resumes like an ingest. The last sync
(time, folder, counts) is kept in ``last-sync.json`` in the index's local folder.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.errors import InputError, RagError
from rag.files import now_iso, write_json_atomic
from rag.index.chunking import ChunkingConfig
from rag.index.documents import iter_input_files
from rag.index.ingest import IngestReport, ingest
from rag.index.locations import local_dir
from rag.models.embedders import Embedder
from rag.progress import ProgressCallback

LAST_SYNC = "last-sync.json"
Fingerprint = tuple[tuple[str, int, int], ...]


def sync(
    folder: str | Path,
    location: str | Path,
    embedder: Embedder,
    chunking: ChunkingConfig = ChunkingConfig(),
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Make the index at ``location`` match ``folder`` and record the sync."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{folder}: no such folder (rag sync takes a folder; use rag ingest for files)")
    if next(iter_input_files([root]), None) is None:
        # An unmounted share leaves an empty mount point: syncing it would remove every document.
        raise InputError(f"{folder}: the folder holds no supported files; nothing synced (to empty the index, use rag remove)")
    report = ingest([root], location, embedder, chunking, progress=progress, prune=True)
    record = {"time": now_iso(), "folder": str(root.resolve()), **counts(report), "seconds": round(report.seconds, 2)}
    write_json_atomic(local_dir(location) / LAST_SYNC, record)
    return report


def counts(report: IngestReport) -> dict[str, int]:
    """What a sync did, in numbers."""
    return {
        "added": len(report.documents_added),
        "replaced": len(report.documents_replaced),
        "removed": len(report.documents_removed),
        "unchanged": len(report.files_unchanged),
        "failed": len(report.files_failed),
    }


def summary(folder: str | Path, report: IngestReport) -> str:
    """The one-line summary of a sync."""
    done = counts(report)
    return (
        f"synced {folder}: {done['added']} added, {done['replaced']} replaced, {done['removed']} removed, "
        f"{done['unchanged']} files unchanged, {done['failed']} failed; {report.chunks_total} chunks in the index "
        f"({report.seconds:.1f} s)"
    )


def last_sync(location: str | Path) -> dict[str, Any] | None:
    """The record of the last sync into ``location``, or None (never synced, or unreadable)."""
    try:
        record = json.loads((local_dir(location) / LAST_SYNC).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "time" in record else None


def fingerprint(folder: Path) -> Fingerprint:
    """Path, size and modification time of every file a sync would read: cheap to take, changes
    when a file is added, removed, rewritten or touched."""
    if not folder.is_dir():
        return ()  # gone (an unmounted share, say): the sync itself reports it
    rows = []
    for path in iter_input_files([folder]):
        try:
            stat = path.stat()
        except OSError:
            continue  # deleted meanwhile
        rows.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(rows)


def watch(
    folder: str | Path,
    run: Callable[[], object],
    interval: float = 2.0,
    stop: threading.Event | None = None,
    on_error: Callable[[RagError], None] | None = None,
) -> None:
    """Call ``run`` (a sync) at once, then whenever the folder changes, until ``stop`` is set.

    The folder is polled every ``interval`` seconds; a change is synced once the folder has stayed
    the same for one more interval (debounce: a file still being copied is not read half-way).
    A failed round (``on_error``; say, another process holds the index) is retried on the next poll.
    """
    root, stop = Path(folder).expanduser(), stop or threading.Event()
    synced: Fingerprint | None = None
    while not stop.is_set():
        current = fingerprint(root)
        if current != synced:
            if synced is not None and (stop.wait(interval) or fingerprint(root) != current):
                continue  # stopped, or still changing: look again
            try:
                run()
                synced = current
            except RagError as exc:
                if on_error is None:
                    raise
                on_error(exc)
        stop.wait(interval)
