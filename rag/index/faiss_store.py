"""The embedded default store: an index directory with a JSON manifest, FAISS vectors and BM25 tokens.

Layout (see ``index/README.md``)::

    <index>/manifest.json        what is indexed and how; lists the live segments and their tombstones
    <index>/gen-000003/chunks.jsonl   one segment: the chunks one write added, with their BM25 tokens
    <index>/gen-000003/vectors.faiss  their vectors: an inner-product index of unit vectors
    <index>/pending/             embeddings of an ingest that has not finished (for resuming)
    <index>/.lock                held by the one process writing the index

A commit writes only a new segment (the chunks it adds) and a new manifest; chunks it removes
from older segments become tombstones (row numbers) in the manifest. Replacing ``manifest.json``
atomically is the switch, so readers never see a half-written index. When segments or tombstones
pile up, the commit compacts: every live chunk is written into one new segment. A reader's
:meth:`FaissStore.refresh` loads only the segments and tombstones it has not seen. This module
owns the whole format: nothing else reads or writes these files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rag.errors import IndexStoreError
from rag.files import now_iso, write_json_atomic
from rag.index.chunking import Chunk, ChunkingConfig
from rag.index.filters import SearchFilter
from rag.index.lexical import LEXICAL_SCHEME, BM25Index, tokenize
from rag.index.store import (
    DocumentRecord,
    Manifest,
    ScoredChunk,
    SourceRecord,
    check_same_chunking,
    check_same_model,
    documents_of,
    lexical_is_current,
    library_versions,
    new_manifest,
    sources_of,
    text_key,
)

log = logging.getLogger(__name__)
INDEX_FORMAT = "rag-zh-index/2"
FORMATS_READ = ("rag-zh-index/1", INDEX_FORMAT)  # /1: one segment named by ``generation``, no tombstones
MANIFEST = "manifest.json"
SEGMENT_KEYS = {"name", "rows", "deleted"}  # one entry of the manifest's "segments"
MAX_SEGMENTS = 16  # a commit that would leave more segments compacts instead
MAX_DELETED_SHARE = 0.25  # ... and so does one that would leave more of the stored rows deleted
STAMP_SETTLE_S = 2.0  # a manifest this old is recognised by its file stamp (see manifest_stamp)
T = TypeVar("T")


@contextlib.contextmanager
def write_lock(root: Path) -> Iterator[None]:
    """Exclusive lock so two writers (CLI and web upload, say) never interleave."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexStoreError(f"{root}: another process is writing this index; try again when it finishes") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


@dataclass
class Rows:
    """Chunks in index order with their BM25 tokens and vectors, and where each is stored
    (segment name, row in that segment)."""

    chunks: list[Chunk]
    tokens: list[list[str]]
    vectors: np.ndarray
    origin: list[tuple[str, int]]

    @classmethod
    def concat(cls, parts: Sequence[Rows], dim: int) -> Rows:
        """``parts`` one after the other (vectors of ``dim`` columns, also when there are none)."""
        return cls(
            [c for p in parts for c in p.chunks],
            [t for p in parts for t in p.tokens],
            np.concatenate([np.zeros((0, dim), dtype=np.float32), *(p.vectors for p in parts)]),
            [o for p in parts for o in p.origin],
        )


class FaissStore:
    """An index directory, loaded into memory (chunks, BM25 tokens, vectors) for searching and writing."""

    def __init__(self, root: Path, manifest: dict[str, Any], rows: Rows) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self._raw = manifest
        self.chunks = rows.chunks
        self.tokens = rows.tokens
        self._vectors = rows.vectors
        self._origin: list[tuple[str, int]] | None = rows.origin  # None: contents replaced, not saved yet
        self._faiss: Any = None
        self._bm25: BM25Index | None = None
        self._guard = threading.RLock()  # a refresh swaps the contents while other threads search
        self._seen: tuple[int, int, int] | None = None  # the manifest file last read (see refresh)

    # ---------------------------------------------------------------- construction

    @classmethod
    def empty(cls, root: Path, model_id: str, dim: int, chunking: ChunkingConfig) -> FaissStore:
        manifest = {
            **new_manifest(INDEX_FORMAT, model_id, dim, chunking, library_versions()),
            "generation": None,
            "segments": [],
        }
        return cls(root, manifest, Rows([], [], np.zeros((0, dim), dtype=np.float32), []))

    @staticmethod
    def exists(root: Path) -> bool:
        return (Path(root) / MANIFEST).is_file()

    @classmethod
    def load(cls, root: Path) -> FaissStore:
        """Read an index; a missing, unreadable or inconsistent one is an :class:`IndexStoreError`."""
        root = Path(root)
        seen = manifest_stamp(root)
        manifest = read_manifest(root)
        dim = int(manifest["embedding"]["dim"])
        rows = Rows.concat(_read_segments(root, manifest["segments"], dim), dim)
        if len(rows.chunks) != manifest["n_chunks"]:
            raise IndexStoreError(
                f"{root}: the index is inconsistent ({len(rows.chunks)} live chunks, manifest says "
                f"{manifest['n_chunks']}); rebuild it with `rag ingest --rebuild`"
            )
        store = cls(root, manifest, rows)
        store._seen = seen
        if not lexical_is_current(store.manifest):
            store._retokenize()
        return store

    def _retokenize(self) -> None:
        """Tokenize every chunk again (an index from before the current ``LEXICAL_SCHEME``); opened
        for writing, the index is then saved in the new form at once, as a compaction would."""
        log.warning("%s: BM25 tokens are from an older tokenizer; re-tokenizing (`rag ingest` saves them)", self.root)
        self.tokens = [tokenize(chunk.embed_text) for chunk in self.chunks]
        self._raw["lexical"] = LEXICAL_SCHEME
        self._origin = None

    @classmethod
    def open_for_writing(cls, root: Path, model_id: str, dim: int, chunking: ChunkingConfig, rebuild: bool = False) -> FaissStore:
        """Load the index at ``root`` (checking model and chunking) or start an empty one."""
        if rebuild or not cls.exists(root):
            return cls.empty(root, model_id, dim, chunking)
        store = cls.load(root)
        store.check_model(model_id, dim)
        check_same_chunking(str(root), store.manifest, chunking)
        if store._origin is None:  # re-tokenized on load (an older index): the writer saves the new form
            store.save()
        return store

    # ---------------------------------------------------------------- properties

    @property
    def manifest(self) -> Manifest:
        return Manifest.from_raw(self._raw)

    @property
    def model_id(self) -> str:
        return str(self._raw["embedding"]["model_id"])

    @property
    def dim(self) -> int:
        return int(self._raw["embedding"]["dim"])

    @property
    def chunking(self) -> ChunkingConfig:
        return ChunkingConfig(**self._raw["chunking"])

    @property
    def generation(self) -> str | None:
        generation = self._raw["generation"]
        return str(generation) if generation else None

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    def count(self) -> int:
        return len(self.chunks)

    def documents(self) -> list[DocumentRecord]:
        return documents_of(self._raw)

    def sources(self) -> dict[str, SourceRecord]:
        return sources_of(self._raw)

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        with self._guard:
            return sorted((c for c in self.chunks if c.doc_id == doc_id), key=lambda c: c.position)

    def check_model(self, model_id: str, dim: int) -> None:
        """Refuse to mix vectors of different models."""
        check_same_model(self.location, self.manifest, model_id, dim)

    # ---------------------------------------------------------------- search

    def faiss_index(self) -> Any:
        """Exact inner-product index (cosine on unit vectors), built on first use."""
        if self._faiss is None:
            self._faiss = _flat_index(self._vectors, self.dim)
        return self._faiss

    def bm25_index(self) -> BM25Index:
        if self._bm25 is None:
            self._bm25 = BM25Index(self.tokens)
        return self._bm25

    def search_dense(self, vector: np.ndarray, k: int, where: SearchFilter | None = None) -> list[ScoredChunk]:
        """Exact search; with ``where``, over the matching rows only (a FAISS ID selector)."""
        import faiss

        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        with self._guard:
            rows = self._matching_rows(where)
            size = len(self.chunks) if rows is None else len(rows)
            if not size:
                return []
            params, selector = None, None
            if rows is not None:
                params, selector = faiss.SearchParameters(), faiss.IDSelectorBatch(rows)
                params.sel = selector  # ``selector`` stays referenced until the search is done
            with one_faiss_thread():
                scores, found = self.faiss_index().search(query, min(k, size), params=params)
            return [ScoredChunk(self.chunks[int(r)], float(s), int(r)) for r, s in zip(found[0], scores[0]) if r >= 0]

    def search_lexical(self, query: str, k: int, where: SearchFilter | None = None) -> list[ScoredChunk]:
        """BM25; with ``where``, the scores of the other rows are masked out before the top ``k``."""
        tokens = tokenize(query)
        with self._guard:
            rows = self._matching_rows(where)
            if not self.chunks or (rows is not None and not len(rows)):
                return []
            found = self.bm25_index().search(tokens, k, rows)
            return [ScoredChunk(self.chunks[row], score, row) for row, score in found]

    def _matching_rows(self, where: SearchFilter | None) -> np.ndarray | None:
        """The rows ``where`` lets through (None: no filter, every row)."""
        if not where:
            return None
        return np.fromiter((row for row, chunk in enumerate(self.chunks) if where.matches(chunk)), dtype=np.int64)

    def known_vectors(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = set(keys)
        found: dict[str, np.ndarray] = {}
        for row, chunk in enumerate(self.chunks):
            key = text_key(chunk)
            if key in wanted:
                found[key] = self._vectors[row]
        return found

    def refresh(self) -> bool:
        """Pick up a newer generation written by another process; True if there was one.

        A manifest file that is still the one read last time (same inode, time and size: a commit
        replaces the file) is not read again; every question asks, and a manifest lists every
        document (measured: 31 ms per refresh at 3,000 documents on 2 busy cores). Only new segments
        and tombstones are read when the segments this handle holds are still listed first; after a
        compaction (or a rebuild) the index is loaded again in full.
        """
        seen = manifest_stamp(self.root)
        if seen is not None and seen == self._seen:
            return False
        changed = self._refresh_from(read_manifest(self.root))
        self._seen = seen
        return changed

    def _refresh_from(self, manifest: dict[str, Any]) -> bool:
        """:meth:`refresh` with the manifest on disk read."""
        if manifest["generation"] == self.generation:
            return False
        dropped = self._rows_gone(manifest)
        if dropped is None:
            fresh = FaissStore.load(self.root)
            with self._guard:
                self._raw, self._origin = fresh._raw, fresh._origin
                self.chunks, self.tokens, self._vectors = fresh.chunks, fresh.tokens, fresh._vectors
                self._faiss = self._bm25 = None
            return True
        held = {s["name"] for s in self._raw["segments"]}
        added = Rows.concat(
            _read_segments(self.root, [s for s in manifest["segments"] if s["name"] not in held], self.dim), self.dim
        )
        if len(self.chunks) - len(dropped) + len(added.chunks) != manifest["n_chunks"]:
            raise IndexStoreError(f"{self.root}: the index is inconsistent; rebuild it with `rag ingest --rebuild`")
        self._apply(manifest, dropped, added)
        return True

    def _rows_gone(self, manifest: dict[str, Any]) -> list[int] | None:
        """Rows of this handle that ``manifest`` deletes, or None if it cannot be reached by
        deleting rows and appending segments (nothing held survives, or the order changed)."""
        held = [s["name"] for s in self._raw["segments"]]
        listed = {s["name"]: set(s["deleted"]) for s in manifest["segments"]}
        surviving = [name for name in held if name in listed]
        if self._origin is None or not surviving or [s["name"] for s in manifest["segments"]][: len(surviving)] != surviving:
            return None
        return [row for row, (name, stored) in enumerate(self._origin) if name not in listed or stored in listed[name]]

    def _apply(self, manifest: dict[str, Any], dropped: Sequence[int], added: Rows) -> None:
        """Switch to ``manifest``: drop the rows ``dropped``, append ``added``; FAISS and BM25 follow
        in place, so the cost is that of the change, not of the index."""
        rows = sorted(set(dropped))
        vectors = np.delete(self._vectors, rows, axis=0) if rows else self._vectors
        with self._guard:
            self.chunks = _without(self.chunks, rows) + added.chunks
            self.tokens = _without(self.tokens, rows) + added.tokens
            self._vectors = np.concatenate([vectors, added.vectors])
            self._origin = _without(self._origin or [], rows) + added.origin
            if self._faiss is not None:
                if rows:
                    self._faiss.remove_ids(np.asarray(rows, dtype=np.int64))
                if len(added.chunks):
                    self._faiss.add(added.vectors)
            if self._bm25 is not None:
                self._bm25.remove(rows)
                self._bm25.add(added.tokens)
            self._raw = manifest

    # ---------------------------------------------------------------- writing

    def embedding_journal(self, model_id: str) -> PendingEmbeddings:
        return PendingEmbeddings(self.root, model_id)

    def commit(
        self,
        drop_doc_ids: Collection[str],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        documents: Sequence[DocumentRecord],
        sources: Sequence[SourceRecord],
    ) -> None:
        """Write a segment of ``chunks`` and tombstones for the dropped ones, or compact when due."""
        new_vectors = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim)
        tokens = [tokenize(c.embed_text) for c in chunks]
        dropped = [row for row, chunk in enumerate(self.chunks) if chunk.doc_id in drop_doc_ids]
        name = self._next_generation()
        segments = self._segments_after(dropped, name if chunks else None, len(chunks))
        if segments is None or _compaction_due(segments):
            self.replace_contents(
                _without(self.chunks, dropped) + list(chunks),
                _without(self.tokens, dropped) + tokens,
                np.concatenate([np.delete(self._vectors, dropped, axis=0), new_vectors]),
                documents,
                sources,
            )
            self.save()
            return
        added = Rows(list(chunks), tokens, new_vectors, [(name, row) for row in range(len(chunks))])
        if chunks:
            _write_segment(self.root, name, added)
        manifest = self._manifest_for(name, segments, len(self.chunks) - len(dropped) + len(chunks), documents, sources)
        write_json_atomic(self.root / MANIFEST, manifest)
        self._apply(manifest, dropped, added)
        _remove_unlisted(self.root, segments)

    def _segments_after(self, dropped: Sequence[int], name: str | None, rows: int) -> list[dict[str, Any]] | None:
        """The manifest's segment list once ``dropped`` rows are tombstoned and a segment ``name`` of
        ``rows`` rows is appended; segments left without a live row go. None if the contents were
        replaced in memory (nothing on disk to build on)."""
        if self._origin is None:
            return None
        deleted = {s["name"]: set(s["deleted"]) for s in self._raw["segments"]}
        for row in dropped:
            segment, stored = self._origin[row]
            deleted[segment].add(stored)
        segments = [
            {**s, "deleted": sorted(deleted[s["name"]])} for s in self._raw["segments"] if len(deleted[s["name"]]) < s["rows"]
        ]
        return segments + ([{"name": name, "rows": rows, "deleted": []}] if name else [])

    def _next_generation(self) -> str:
        """The name of the next generation; a new (or rebuilt) store continues the numbers of the
        manifest on disk, so no name is used twice and readers never mistake one segment for another."""
        current = self.generation or _generation_on_disk(self.root)
        return f"gen-{int(current.split('-')[1]) + 1 if current else 1:06d}"

    def _manifest_for(
        self,
        name: str,
        segments: list[dict[str, Any]],
        n_chunks: int,
        documents: Sequence[DocumentRecord],
        sources: Sequence[SourceRecord],
    ) -> dict[str, Any]:
        return {
            **self._raw,
            "format": INDEX_FORMAT,
            "generation": name,
            "segments": segments,
            "n_chunks": n_chunks,
            "documents": [asdict(d) for d in documents],
            "sources": [asdict(s) for s in sources],
            "updated_at": now_iso(),
            "versions": library_versions(),
        }

    def replace_contents(
        self,
        chunks: list[Chunk],
        tokens: list[list[str]],
        vectors: np.ndarray,
        documents: Sequence[DocumentRecord],
        sources: Sequence[SourceRecord],
    ) -> None:
        """Swap in new contents (in memory); :meth:`save` writes them."""
        if not (len(chunks) == len(tokens) == len(vectors)):
            raise ValueError("chunks, tokens and vectors must have the same length")
        self.chunks, self.tokens = chunks, tokens
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim)
        self._origin = None
        self._faiss = self._bm25 = None
        self._raw["documents"] = [asdict(d) for d in documents]
        self._raw["sources"] = [asdict(s) for s in sources]
        self._raw["n_chunks"] = len(chunks)

    def save(self) -> None:
        """Write every chunk into one new segment and switch the manifest to it alone (a compaction);
        the other segments are deleted."""
        name = self._next_generation()
        rows = Rows(self.chunks, self.tokens, self._vectors, [(name, row) for row in range(len(self.chunks))])
        _write_segment(self.root, name, rows)
        segments = [{"name": name, "rows": len(self.chunks), "deleted": []}]
        manifest = self._manifest_for(name, segments, len(self.chunks), self.documents(), list(self.sources().values()))
        write_json_atomic(self.root / MANIFEST, manifest)
        self._raw, self._origin = manifest, rows.origin
        _remove_unlisted(self.root, segments)


def manifest_stamp(root: Path) -> tuple[int, int, int] | None:
    """(inode, modification time in ns, size) of the manifest file; None if there is none, or if it
    is under ``STAMP_SETTLE_S`` old: a file system with coarse times could give the next commit's
    manifest the same time, and the freed inode, so only a settled file is known by its stamp."""
    try:
        found = (Path(root) / MANIFEST).stat()
    except OSError:
        return None
    if time.time_ns() - found.st_mtime_ns < STAMP_SETTLE_S * 1e9:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of ``root``, checked for format and required keys; a ``/1`` manifest gets the
    ``segments`` list of ``/2`` (its generation folder as the one segment)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise IndexStoreError(f"no index at {root}: run `rag ingest PATH --index {root}` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexStoreError(f"{path} is unreadable ({exc}); rebuild the index with `rag ingest --rebuild`") from exc
    required = ("format", "generation", "embedding", "chunking", "n_chunks", "documents", "sources")
    if not isinstance(manifest, dict) or any(key not in manifest for key in required):
        raise IndexStoreError(f"{path} is not an index manifest; rebuild the index with `rag ingest --rebuild`")
    if manifest["format"] not in FORMATS_READ:
        raise IndexStoreError(f"{path}: index format {manifest['format']!r} is not {INDEX_FORMAT!r}; rebuild it")
    if manifest["format"] != INDEX_FORMAT:
        manifest["segments"] = [{"name": manifest["generation"], "rows": manifest["n_chunks"], "deleted": []}]
    segments = manifest.get("segments")
    if not isinstance(segments, list) or not all(isinstance(s, dict) and SEGMENT_KEYS <= s.keys() for s in segments):
        raise IndexStoreError(f"{path} is not an index manifest; rebuild the index with `rag ingest --rebuild`")
    return manifest


def _generation_on_disk(root: Path) -> str | None:
    """The generation the manifest at ``root`` names, if there is a readable one."""
    try:
        return str(read_manifest(root)["generation"])
    except IndexStoreError:
        return None


def _without(items: list[T], rows: Sequence[int]) -> list[T]:
    """``items`` less the positions ``rows``."""
    if not rows:
        return items
    gone = set(rows)
    return [item for row, item in enumerate(items) if row not in gone]


def _compaction_due(segments: Sequence[dict[str, Any]]) -> bool:
    """Too many segments, or too many of their rows deleted."""
    stored = sum(s["rows"] for s in segments)
    deleted = sum(len(s["deleted"]) for s in segments)
    return len(segments) > MAX_SEGMENTS or deleted > MAX_DELETED_SHARE * stored


def _read_segments(root: Path, segments: Sequence[dict[str, Any]], dim: int) -> list[Rows]:
    """The live rows of each segment (its rows minus its tombstones), checked against the manifest."""
    parts = []
    for segment in segments:
        folder = root / segment["name"]
        try:
            chunks, tokens = _read_chunks(folder / "chunks.jsonl")
            vectors = _read_vectors(folder / "vectors.faiss")
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexStoreError(f"{root}: the index files are damaged ({exc}); rebuild it with `rag ingest --rebuild`") from exc
        if len(chunks) != segment["rows"] or vectors.shape != (len(chunks), dim):
            raise IndexStoreError(
                f"{root}: the index is inconsistent ({len(chunks)} chunks, vectors {vectors.shape}, "
                f"manifest says {segment['rows']} x {dim} in {segment['name']}); rebuild it with `rag ingest --rebuild`"
            )
        deleted = set(segment["deleted"])
        live = [row for row in range(len(chunks)) if row not in deleted]
        parts.append(
            Rows([chunks[r] for r in live], [tokens[r] for r in live], vectors[live], [(segment["name"], r) for r in live])
        )
    return parts


def _write_segment(root: Path, name: str, rows: Rows) -> None:
    """Write ``rows`` as the segment folder ``name`` (built under a temporary name, then renamed)."""
    import faiss

    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{name}.{uuid.uuid4().hex}"
    staging.mkdir()  # the umask decides its mode, as for the files in it
    try:
        with open(staging / "chunks.jsonl", "w", encoding="utf-8") as handle:
            for chunk, tokens in zip(rows.chunks, rows.tokens):
                handle.write(json.dumps({**asdict(chunk), "tokens": tokens}, ensure_ascii=False) + "\n")
        faiss.write_index(_flat_index(rows.vectors, rows.vectors.shape[1]), str(staging / "vectors.faiss"))
        target = root / name
        if target.exists():
            shutil.rmtree(target)  # an orphan of a write that crashed before its manifest switch
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _remove_unlisted(root: Path, segments: Sequence[dict[str, Any]]) -> None:
    """Delete segment folders the manifest no longer lists, and leftovers of crashed writes."""
    listed = {s["name"] for s in segments}
    for path in [*root.glob("gen-*"), *root.glob(".gen-*")]:
        if path.name not in listed:
            shutil.rmtree(path, ignore_errors=True)


def _read_chunks(path: Path) -> tuple[list[Chunk], list[list[str]]]:
    chunks, tokens = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            tokens.append([sys.intern(token) for token in row.pop("tokens")])  # one copy of each word
            chunks.append(Chunk(**row))
    return chunks, tokens


@contextlib.contextmanager
def one_faiss_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread in this thread, for one query: a second thread only waits on the
    first (nq=1), and on a busy machine the barrier waits for a core (measured on 2 shared cores:
    10k chunks 31 ms with 2 threads, 3.7 ms with 1; benchmarks/kb-search.md). The thread count is
    per calling thread (an OpenMP ICV), so concurrent searches do not disturb each other."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _flat_index(vectors: np.ndarray, dim: int) -> Any:
    import faiss

    index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _read_vectors(path: Path) -> np.ndarray:
    import faiss

    index = faiss.read_index(str(path))
    if index.ntotal == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
