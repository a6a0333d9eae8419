"""Folder sync: make an index match a folder, once or whenever the folder changes.

A sync is an ingest of the folder that also removes the sources inside it whose files are gone,
in one commit (:func:`rag.index.ingest.ingest` with ``prune``): new and changed files go in,
unchanged ones are skipped by hash, and an interrupted sync resumes like an ingest. The last sync
(time, folder, counts) is kept in ``last-sync.json`` in the index's local folder.

A share that goes missing in part or whole must not empty the index, so a sync:

- refuses a folder with no supported files (an unmounted share leaves an empty mount point);
- keeps the documents under a subfolder it cannot read, and says so: the rule for a file that
  cannot be read, and one private subfolder does not hold up the rest of the share (nor a watch);
- refuses, before changing anything, to remove more than ``max_removal`` percent of the
  documents recorded under the folder (``RAG_SYNC_MAX_REMOVAL``, default 50; ``rag sync
  --allow-mass-removal`` lifts it): a nested share unmounted, a subfolder moved away. Documents
  are counted, not files, because they are what searches lose (one JSONL file may hold
  thousands). The limit holds whatever the folder's size: deleting the only file of a
  one-file share looks exactly like losing the share, so it needs the flag too;
- never follows a symbolic link (:func:`rag.index.documents.scan_input`), and names those that
  point out of the folder.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.config import DEFAULT_SYNC_MAX_REMOVAL
from rag.errors import InputError, RagError
from rag.files import now_iso, write_json_atomic
from rag.index.chunking import ChunkingConfig
from rag.index.documents import FolderScan, scan_input
from rag.index.ingest import IngestReport, RemovalCheck, ingest
from rag.index.locations import local_dir
from rag.index.store import SourceRecord
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
    max_removal: float = DEFAULT_SYNC_MAX_REMOVAL,
) -> IngestReport:
    """Make the index at ``location`` match ``folder`` and record the sync; ``max_removal``: the
    percent of the folder's documents it may remove (100: no limit)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{folder}: no such folder (rag sync takes a folder; use rag ingest for files)")
    scan = scan_input(root)
    if not scan.files:
        raise InputError(nothing_found(folder, scan))
    check = removal_limit(folder, max_removal)
    report = ingest([root], location, embedder, chunking, progress=progress, prune=True, check_removal=check)
    record = {"time": now_iso(), "folder": str(root.resolve()), **counts(report), "seconds": round(report.seconds, 2)}
    write_json_atomic(local_dir(location) / LAST_SYNC, record)
    return report


def nothing_found(folder: str | Path, scan: FolderScan) -> str:
    """Why a folder without a supported file is not synced."""
    if scan.unreadable:
        where, why = scan.unreadable[0]
        return f"{where}: cannot read this folder ({why}); nothing synced, its documents are kept"
    return f"{folder}: the folder holds no supported files; nothing synced (to empty the index, use rag remove)"


def removal_limit(folder: str | Path, max_removal: float) -> RemovalCheck:
    """A check refusing a sync that would remove more than ``max_removal`` percent of the documents
    recorded under ``folder``."""
    root = Path(folder).expanduser().resolve()

    def check(gone: Sequence[str], sources: Mapping[str, SourceRecord]) -> None:
        total = sum(len(record.doc_ids) for key, record in sources.items() if Path(key).is_relative_to(root))
        removed = sum(len(sources[key].doc_ids) for key in gone)
        if removed > total * max_removal / 100:
            raise InputError(
                f"{folder}: this sync would remove {removed} of the {total} documents under it "
                f"({100 * removed / total:.0f} %, {len(gone)} files gone), over the {max_removal:g} % limit "
                "(RAG_SYNC_MAX_REMOVAL); nothing synced. If a share under it is unmounted, mount it; "
                "if the files were deleted on purpose, run rag sync --allow-mass-removal"
            )

    return check


def counts(report: IngestReport) -> dict[str, int]:
    """What a sync did, in numbers."""
    return {
        "added": len(report.documents_added),
        "replaced": len(report.documents_replaced),
        "removed": len(report.documents_removed),
        "unchanged": len(report.files_unchanged),
        "failed": len(report.files_failed),
        "unreadable": len(report.folders_unreadable),
    }


def summary(folder: str | Path, report: IngestReport) -> str:
    """The one-line summary of a sync."""
    done = counts(report)
    kept = f", {done['unreadable']} folders unreadable (their documents kept)" if done["unreadable"] else ""
    return (
        f"synced {folder}: {done['added']} added, {done['replaced']} replaced, {done['removed']} removed, "
        f"{done['unchanged']} files unchanged, {done['failed']} failed{kept}; {report.chunks_total} chunks in the index "
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
    try:
        files = scan_input(folder).files if folder.is_dir() else []
    except InputError:
        files = []  # gone meanwhile (an unmounted share, say): the sync itself reports it
    rows = []
    for path in files:
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
    A failed round (say, another process holds the index, or a sync refused to remove most of the
    folder) is retried on the next poll; ``on_error`` hears of an error once, until another error
    or a round that succeeds.
    """
    root, stop = Path(folder).expanduser(), stop or threading.Event()
    synced: Fingerprint | None = None
    reported = ""
    while not stop.is_set():
        current = fingerprint(root)
        if current != synced:
            if synced is not None and (stop.wait(interval) or fingerprint(root) != current):
                continue  # stopped, or still changing: look again
            try:
                run()
                synced, reported = current, ""
            except RagError as exc:
                if on_error is None:
                    raise
                if str(exc) != reported:
                    on_error(exc)
                reported = str(exc)
        stop.wait(interval)
