"""Adding, updating and removing documents in an index.

Re-ingesting an unchanged file does nothing; a changed file replaces its chunks, reusing the
vectors of chunks whose text did not change. Embeddings are saved batch by batch under
``<index>/pending/`` so an interrupted ingest resumes without re-embedding what was done.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .chunking import Chunk, ChunkingConfig, chunk_document
from .documents import Document, file_sha256, iter_input_files, load_file
from .embedders import Embedder
from .errors import IndexStoreError, InputError, RagError
from .lexical import tokenize
from .stores import DocumentRecord, IndexStore, SourceRecord, now_iso, write_lock

ProgressCallback = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: "load", "embed", "write"."""

EMBED_BATCH = 32


@dataclass
class IngestReport:
    """What an ingest did, for the CLI, the UI and tests."""

    files_seen: int = 0
    files_unchanged: list[str] = field(default_factory=list)
    files_failed: list[tuple[str, str]] = field(default_factory=list)
    documents_added: list[str] = field(default_factory=list)
    documents_replaced: list[str] = field(default_factory=list)
    chunks_total: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.documents_added or self.documents_replaced)


def text_key(chunk: Chunk) -> str:
    """Cache key of a chunk's embedding: the hash of exactly what is embedded."""
    return hashlib.sha1(chunk.embed_text.encode("utf-8")).hexdigest()


class PendingEmbeddings:
    """Embeddings computed by an unfinished ingest, saved batch by batch (``pending/*.npz``)."""

    def __init__(self, root: Path, model_id: str) -> None:
        slug = hashlib.sha1(model_id.encode("utf-8")).hexdigest()[:12]
        self.folder = root / "pending" / slug
        self.vectors: dict[str, np.ndarray] = {}
        for path in sorted(self.folder.glob("batch-*.npz")):
            try:
                with np.load(path) as data:
                    self.vectors.update(zip(data["keys"].tolist(), data["vectors"]))
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # a batch cut off mid-write: recompute it

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        number = len(list(self.folder.glob("batch-*.npz")))
        tmp = self.folder / f".batch-{number:06d}.tmp.npz"
        np.savez(tmp, keys=np.array(keys), vectors=vectors)
        tmp.replace(self.folder / f"batch-{number:06d}.npz")
        self.vectors.update(zip(keys, vectors))

    def clear(self) -> None:
        shutil.rmtree(self.folder.parent, ignore_errors=True)


def open_or_create(root: Path, embedder: Embedder, chunking: ChunkingConfig, rebuild: bool = False) -> IndexStore:
    """Load the index at ``root`` (checking model and chunking) or start an empty one."""
    if rebuild or not IndexStore.exists(root):
        return IndexStore.empty(root, embedder.model_id, embedder.dim, chunking)
    store = IndexStore.load(root)
    store.check_model(embedder.model_id, embedder.dim)
    if store.chunking != chunking:
        raise IndexStoreError(
            f"{root} was chunked with {store.chunking.to_dict()}, not {chunking.to_dict()}; "
            "use the same settings or rebuild with `rag ingest --rebuild`"
        )
    return store


def _unique_doc_ids(documents: list[Document], taken: set[str], source: str) -> list[Document]:
    """Documents whose ids clash with another source's get the source's short hash appended."""
    suffix = hashlib.sha1(source.encode("utf-8")).hexdigest()[:6]
    fixed = []
    for doc in documents:
        if doc.doc_id in taken:
            doc = Document(f"{doc.doc_id}~{suffix}", doc.title, doc.text, doc.source, doc.meta)
        fixed.append(doc)
    return fixed


def _embed_missing(
    chunks: Sequence[Chunk],
    known: dict[str, np.ndarray],
    pending: PendingEmbeddings,
    embedder: Embedder,
    progress: ProgressCallback | None,
) -> tuple[np.ndarray, int]:
    """Vectors for ``chunks`` in order; embeds only those not in ``known`` or ``pending``."""
    keys = [text_key(c) for c in chunks]
    todo = [i for i, key in enumerate(keys) if key not in known and key not in pending.vectors]
    todo_unique = list(dict.fromkeys(keys[i] for i in todo))
    text_of = {keys[i]: chunks[i].embed_text for i in todo}
    for start in range(0, len(todo_unique), EMBED_BATCH):
        batch = todo_unique[start : start + EMBED_BATCH]
        pending.add(batch, embedder.embed([text_of[k] for k in batch], kind="passage"))
        if progress:
            progress("embed", min(start + EMBED_BATCH, len(todo_unique)), len(todo_unique))
    vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
    for row, key in enumerate(keys):
        vectors[row] = known[key] if key in known else pending.vectors[key]
    return vectors, len(todo_unique)


def ingest(
    paths: Iterable[str | Path],
    root: Path,
    embedder: Embedder,
    chunking: ChunkingConfig = ChunkingConfig(),
    rebuild: bool = False,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Add or update the given files/folders in the index at ``root``.

    Files that cannot be read are reported in ``files_failed`` and leave the index as it was;
    the other files are still ingested.
    """
    started = time.perf_counter()
    report = IngestReport()
    root = Path(root)
    with write_lock(root):
        store = open_or_create(root, embedder, chunking, rebuild)
        sources = store.sources()
        documents = {d.doc_id: d for d in store.documents()}
        loaded: list[tuple[Path, str, list[Document]]] = []
        files = _expand(paths, report)
        for n, path in enumerate(files, start=1):
            key = str(path.resolve())
            try:
                sha = file_sha256(path)
                if key in sources and sources[key].sha256 == sha:
                    report.files_unchanged.append(str(path))
                    continue
                taken = {d for d, rec in documents.items() if rec.source != key}
                taken.update(doc.doc_id for _, _, docs in loaded for doc in docs)  # same name, other folder
                docs = [Document(d.doc_id, d.title, d.text, key, d.meta) for d in load_file(path)]
                loaded.append((path, sha, _unique_doc_ids(docs, taken, key)))
            except (InputError, OSError) as exc:
                report.files_failed.append((str(path), str(exc)))
            if progress:
                progress("load", n, len(files))
        if not loaded:
            report.seconds = time.perf_counter() - started
            return report
        _apply(store, loaded, sources, documents, embedder, chunking, report, progress)
    report.seconds = time.perf_counter() - started
    return report


def _expand(paths: Iterable[str | Path], report: IngestReport) -> list[Path]:
    """The input files, each once even when named both directly and through its folder."""
    files: dict[Path, Path] = {}
    for raw in paths:
        try:
            for path in iter_input_files([raw]):
                files.setdefault(path.resolve(), path)
        except InputError as exc:
            report.files_failed.append((str(raw), str(exc)))
    report.files_seen = len(files)
    return list(files.values())


def _apply(
    store: IndexStore,
    loaded: list[tuple[Path, str, list[Document]]],
    sources: dict[str, SourceRecord],
    documents: dict[str, DocumentRecord],
    embedder: Embedder,
    chunking: ChunkingConfig,
    report: IngestReport,
    progress: ProgressCallback | None,
) -> None:
    """Replace the chunks of the loaded sources, embed what is new, and save."""
    replaced_sources = {str(path.resolve()) for path, _, _ in loaded}
    stamp = now_iso()
    keep = [i for i, c in enumerate(store.chunks) if c.source not in replaced_sources]
    known = {text_key(store.chunks[i]): store.vectors[i] for i in range(len(store.chunks))}
    new_chunks: list[Chunk] = []
    for path, sha, docs in loaded:
        key = str(path.resolve())
        old_ids = set(sources[key].doc_ids) if key in sources else set()
        for doc_id in old_ids:
            documents.pop(doc_id, None)
        for doc in docs:
            doc_chunks = chunk_document(doc, chunking)
            new_chunks.extend(doc_chunks)
            (report.documents_replaced if doc.doc_id in old_ids else report.documents_added).append(doc.doc_id)
            documents[doc.doc_id] = DocumentRecord(
                doc.doc_id, doc.title, key, doc.content_hash, len(doc_chunks), len(doc.text), stamp, dict(doc.meta)
            )
        sources[key] = SourceRecord(key, sha, [d.doc_id for d in docs], stamp)
    pending = PendingEmbeddings(store.root, embedder.model_id)
    new_vectors, embedded = _embed_missing(new_chunks, known, pending, embedder, progress)
    report.chunks_embedded = embedded
    report.chunks_reused = len(new_chunks) - embedded
    if progress:
        progress("write", 0, 1)
    chunks = [store.chunks[i] for i in keep] + new_chunks
    tokens = [store.tokens[i] for i in keep] + [tokenize(c.embed_text) for c in new_chunks]
    vectors = np.concatenate([store.vectors[keep], new_vectors]) if keep else new_vectors
    store.replace_contents(chunks, tokens, vectors, list(documents.values()), list(sources.values()))
    store.save()
    pending.clear()
    report.chunks_total = len(chunks)
    if progress:
        progress("write", 1, 1)


def remove(root: Path, target: str) -> list[str]:
    """Remove a document (by id) or every document of a source file (by path); returns removed ids."""
    root = Path(root)
    with write_lock(root):
        store = IndexStore.load(root)
        sources = store.sources()
        documents = {d.doc_id: d for d in store.documents()}
        source_key = str(Path(target).expanduser().resolve())
        if target in documents:
            doomed = {target}
        elif source_key in sources:
            doomed = set(sources[source_key].doc_ids)
        else:
            raise RagError(f"no document or source '{target}' in {root}; `rag info --docs` lists them")
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
        keep = [i for i, c in enumerate(store.chunks) if c.doc_id not in doomed]
        store.replace_contents(
            [store.chunks[i] for i in keep],
            [store.tokens[i] for i in keep],
            store.vectors[keep],
            list(documents.values()),
            remaining_sources,
        )
        store.save()
    return sorted(doomed)
