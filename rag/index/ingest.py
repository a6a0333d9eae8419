"""Adding, updating and removing documents in an index.

Re-ingesting an unchanged file does nothing; a changed file replaces its chunks, reusing the
vectors of chunks whose text did not change. Embeddings are saved batch by batch in the store's
embedding journal (``<index>/pending/``) so an interrupted ingest resumes without re-embedding
what was done. The index is any location :mod:`rag.index.locations` knows (a directory or a URI).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.config import parse_limits_from_env
from rag.errors import InputError, RagError
from rag.files import now_iso
from rag.index.chunking import Chunk, ChunkingConfig, chunk_document
from rag.index.documents import Document, file_sha256, scan_input
from rag.index.isolation import IsolatedReader
from rag.index.limits import ParseLimits
from rag.index.locations import open_store, open_store_for_writing, write_lock
from rag.index.store import DocumentRecord, EmbeddingJournal, SourceRecord, Store, text_key
from rag.models.embedders import Embedder
from rag.progress import ProgressCallback

EMBED_BATCH = 32
# Called with the sources a prune would remove and all recorded sources, before anything changes;
# it raises to stop the ingest.
RemovalCheck = Callable[[Sequence[str], Mapping[str, SourceRecord]], None]


@dataclass
class IngestReport:
    """What an ingest did, for the CLI, the UI and tests."""

    files_seen: int = 0
    files_unchanged: list[str] = field(default_factory=list)
    files_failed: list[tuple[str, str]] = field(default_factory=list)
    folders_unreadable: list[tuple[str, str]] = field(default_factory=list)  # (folder, why): its sources are kept
    warnings: list[str] = field(default_factory=list)  # e.g. a PDF page that could not be read; the rest went in
    documents_added: list[str] = field(default_factory=list)
    documents_replaced: list[str] = field(default_factory=list)
    documents_removed: list[str] = field(default_factory=list)
    chunks_total: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.documents_added or self.documents_replaced or self.documents_removed)


@dataclass(frozen=True)
class Preloaded:
    """A file read before its ingest (an upload, by its check): the documents and the loader's warnings."""

    documents: list[Document]
    warnings: tuple[str, ...] = ()


def _unique_doc_ids(documents: list[Document], taken: set[str], source: str) -> list[Document]:
    """Documents whose ids clash with another source's get the source's short hash appended."""
    suffix = hashlib.sha1(source.encode("utf-8")).hexdigest()[:6]
    fixed = []
    for doc in documents:
        if doc.doc_id in taken:
            doc = replace(doc, doc_id=f"{doc.doc_id}~{suffix}")
        fixed.append(doc)
    return fixed


def _embed_missing(
    chunks: Sequence[Chunk],
    store: Store,
    pending: EmbeddingJournal,
    embedder: Embedder,
    progress: ProgressCallback | None,
) -> tuple[np.ndarray, int]:
    """Vectors for ``chunks`` in order; embeds only those neither stored nor ``pending``."""
    keys = [text_key(c) for c in chunks]
    known = store.known_vectors(keys)
    todo = [i for i, key in enumerate(keys) if key not in known and key not in pending.vectors]
    todo_unique = list(dict.fromkeys(keys[i] for i in todo))
    text_of = {keys[i]: chunks[i].embed_text for i in todo}
    lengths = dict(zip(todo_unique, embed_lengths(embedder, [text_of[k] for k in todo_unique]), strict=True))
    # Batches of similar length pad less; ties go by content hash, so the same texts always share a
    # batch whatever order the files came in: int8 activations are quantized per batch, and a
    # text's vector depends (slightly) on its batch mates (benchmarks/ingest-deterministic.md).
    todo_unique.sort(key=lambda key: (lengths[key], key))
    for start in range(0, len(todo_unique), EMBED_BATCH):
        batch = todo_unique[start : start + EMBED_BATCH]
        pending.add(batch, embedder.embed([text_of[k] for k in batch], kind="passage"))
        if progress:
            progress("embed", min(start + EMBED_BATCH, len(todo_unique)), len(todo_unique))
    vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
    for row, key in enumerate(keys):
        vectors[row] = known[key] if key in known else pending.vectors[key]
    return vectors, len(todo_unique)


def embed_lengths(embedder: Embedder, texts: Sequence[str]) -> list[int]:
    """Token counts where the embedder can tell them (measured: sorting by characters left 14.5-20 %
    padding in e5-small's mini-batches, by tokens 0.6-1.0 %), else character counts."""
    token_lengths = getattr(embedder, "token_lengths", None)
    return list(token_lengths(texts)) if token_lengths else [len(text) for text in texts]


def ingest(
    paths: Iterable[str | Path],
    location: str | Path,
    embedder: Embedder,
    chunking: ChunkingConfig = ChunkingConfig(),
    rebuild: bool = False,
    progress: ProgressCallback | None = None,
    prune: bool = False,
    check_removal: RemovalCheck | None = None,
    preloaded: Mapping[Path, Preloaded] | None = None,
    under_lock: AbstractContextManager[None] | None = None,
    limits: ParseLimits | None = None,
) -> IngestReport:
    """Add or update the given files/folders in the index at ``location``.

    Files that cannot be read are reported in ``files_failed`` and leave the index as it was;
    the other files are still ingested. Folders that cannot be read are reported in
    ``folders_unreadable``, links out of a folder in ``warnings`` (see
    :func:`rag.index.documents.scan_input`). Documents get the folders between a given folder and
    their file as tags. ``prune``: sources inside the given folders whose files are gone are
    removed in the same commit (a folder sync), except those under an unreadable folder;
    ``check_removal`` may refuse that removal. ``preloaded``: files already read (by resolved
    path), used instead of reading them again. ``under_lock``: entered once the write lock is held
    and left before it is released; an error of the ingest passes through it (an upload puts its
    file in place there, and the older one back on an error). Each file is read in a worker
    process within ``limits`` (default: the ``RAG_*`` settings, :func:`rag.config.parse_limits_from_env`);
    one that exceeds them is refused like an unreadable file (:mod:`rag.index.isolation`).
    """
    started = time.perf_counter()
    report = IngestReport()
    paths = list(paths)
    with write_lock(location), under_lock or nullcontext(), IsolatedReader(limits or parse_limits_from_env()) as reader:
        store = open_store_for_writing(location, embedder.model_id, embedder.dim, chunking, rebuild)
        sources = store.sources()
        documents = {d.doc_id: d for d in store.documents()}
        loaded: list[tuple[Path, str, list[Document]]] = []
        files = _expand(paths, report)
        gone = _missing_sources(paths, files, sources, report.folders_unreadable) if prune else []
        if gone and check_removal:
            check_removal(gone, sources)
        for n, (path, folder_tags) in enumerate(files.items(), start=1):
            key = str(path.resolve())
            try:
                sha = file_sha256(path)
                if key in sources and sources[key].sha256 == sha:
                    report.files_unchanged.append(str(path))
                    continue
                taken = {d for d, rec in documents.items() if rec.source != key and rec.source not in gone}
                taken.update(doc.doc_id for _, _, docs in loaded for doc in docs)  # same name, other folder
                docs = [
                    replace(d, source=key, tags=tuple(dict.fromkeys(folder_tags + d.tags)))
                    for d in _read(path, preloaded or {}, progress, report.warnings, reader)
                ]
                loaded.append((path, sha, _unique_doc_ids(docs, taken, key)))
            except (InputError, OSError) as exc:
                report.files_failed.append((str(path), str(exc)))
            if progress:
                progress("load", n, len(files))
        if loaded or gone:
            _apply(store, loaded, gone, sources, documents, embedder, chunking, report, progress)
        report.chunks_total = store.count()
    report.seconds = time.perf_counter() - started
    return report


def _read(
    path: Path,
    preloaded: Mapping[Path, Preloaded],
    progress: ProgressCallback | None,
    warnings: list[str],
    reader: IsolatedReader,
) -> list[Document]:
    """The documents of ``path``: the preloaded ones (their warnings reported again), else read now."""
    known = preloaded.get(path.resolve())
    if known is None:
        return reader.read(path, progress, warnings.append)
    warnings.extend(known.warnings)
    return known.documents


def _expand(paths: Iterable[str | Path], report: IngestReport) -> dict[Path, tuple[str, ...]]:
    """The input files, each once even when named both directly and through its folder, with the
    folders between the named folder and the file (the file's tags)."""
    files: dict[Path, tuple[Path, tuple[str, ...]]] = {}
    for raw in paths:
        root = Path(raw).expanduser()
        try:
            scan = scan_input(root)
        except InputError as exc:
            report.files_failed.append((str(raw), str(exc)))
            continue
        for path in scan.files:
            tags = path.relative_to(root).parent.parts if root.is_dir() else ()
            files.setdefault(path.resolve(), (path, tags))
        for folder, why in scan.unreadable:
            report.folders_unreadable.append(
                (str(folder), f"cannot read this folder ({why}); documents indexed from it are kept")
            )
        for link, target in scan.links_outside:
            report.warnings.append(f"skipped the link {link} -> {target}: it points outside {raw}")
    report.files_seen = len(files)
    return dict(files.values())


def _missing_sources(
    paths: Sequence[str | Path],
    files: dict[Path, tuple[str, ...]],
    sources: dict[str, SourceRecord],
    unreadable: Sequence[tuple[str, str]],
) -> list[str]:
    """Recorded sources inside the named folders whose files were not found there now; sources
    under a folder that could not be read are not missing, just unseen."""
    folders = [Path(raw).expanduser().resolve() for raw in paths if Path(raw).expanduser().is_dir()]
    unseen = [Path(folder).resolve() for folder, _ in unreadable]
    found = {str(path.resolve()) for path in files}
    return [
        key
        for key in sources
        if key not in found
        and any(Path(key).is_relative_to(folder) for folder in folders)
        and not any(Path(key).is_relative_to(folder) for folder in unseen)
    ]


def _apply(
    store: Store,
    loaded: list[tuple[Path, str, list[Document]]],
    gone: Sequence[str],
    sources: dict[str, SourceRecord],
    documents: dict[str, DocumentRecord],
    embedder: Embedder,
    chunking: ChunkingConfig,
    report: IngestReport,
    progress: ProgressCallback | None,
) -> None:
    """Drop the ``gone`` sources, replace the chunks of the loaded ones, embed what is new, and commit."""
    stamp = now_iso()
    dropped: set[str] = set()
    new_chunks: list[Chunk] = []
    for key in gone:
        removed = sources.pop(key).doc_ids
        dropped.update(removed)
        report.documents_removed.extend(removed)
        for doc_id in removed:
            documents.pop(doc_id, None)
    for path, sha, docs in loaded:
        key = str(path.resolve())
        old_ids = set(sources[key].doc_ids) if key in sources else set()
        dropped |= old_ids
        for doc_id in old_ids:
            documents.pop(doc_id, None)
        for doc in docs:
            doc_chunks = chunk_document(doc, chunking)
            new_chunks.extend(doc_chunks)
            (report.documents_replaced if doc.doc_id in old_ids else report.documents_added).append(doc.doc_id)
            documents[doc.doc_id] = DocumentRecord(
                doc.doc_id,
                doc.title,
                key,
                doc.content_hash,
                len(doc_chunks),
                len(doc.text),
                stamp,
                dict(doc.meta),
                doc.date,
                list(doc.tags),
            )
        sources[key] = SourceRecord(key, sha, [d.doc_id for d in docs], stamp)
    pending = store.embedding_journal(embedder.model_id)
    new_vectors, embedded = _embed_missing(new_chunks, store, pending, embedder, progress)
    report.chunks_embedded = embedded
    report.chunks_reused = len(new_chunks) - embedded
    if progress:
        progress("write", 0, 1)
    store.commit(dropped, new_chunks, new_vectors, list(documents.values()), list(sources.values()))
    pending.clear()
    if progress:
        progress("write", 1, 1)


def remove(location: str | Path, target: str) -> list[str]:
    """Remove a document (by id) or every document of a source file (by path); returns removed ids."""
    with write_lock(location):
        store = open_store(location)
        sources = store.sources()
        documents = {d.doc_id: d for d in store.documents()}
        source_key = str(Path(target).expanduser().resolve())
        if target in documents:
            doomed = {target}
        elif source_key in sources:
            doomed = set(sources[source_key].doc_ids)
        else:
            raise RagError(f"no document or source '{target}' in {store.location}; `rag info --docs` lists them")
        for doc_id in doomed:
            documents.pop(doc_id, None)
        remaining_sources = []
        for record in sources.values():
            kept_ids = [d for d in record.doc_ids if d not in doomed]
            if kept_ids and len(kept_ids) < len(record.doc_ids):
                record.sha256 = ""  # partly removed: re-ingesting the file restores it
            record.doc_ids = kept_ids
            if kept_ids:
                remaining_sources.append(record)
        store.commit(doomed, [], np.zeros((0, store.manifest.dim), dtype=np.float32), list(documents.values()), remaining_sources)
    return sorted(doomed)
