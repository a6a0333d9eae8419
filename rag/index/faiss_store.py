"""The embedded default store: an index directory with a JSON manifest, FAISS vectors and BM25 tokens.

Layout (see ``index/README.md``)::

    <index>/manifest.json        what is indexed and how; names the current generation
    <index>/gen-000003/chunks.jsonl   one row per chunk, in vector order, with its BM25 tokens
    <index>/gen-000003/vectors.faiss  inner-product index of unit vectors
    <index>/pending/             embeddings of an ingest that has not finished (for resuming)
    <index>/.lock                held by the one process writing the index

A write builds a new generation folder, then atomically replaces ``manifest.json``; readers
never see a half-written index. This module owns the whole format: nothing else reads or
writes these files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rag import __version__
from rag.errors import IndexStoreError
from rag.files import now_iso, write_json_atomic
from rag.index.chunking import Chunk, ChunkingConfig
from rag.index.lexical import BM25Index, tokenize
from rag.index.store import (
    DocumentRecord,
    Manifest,
    ScoredChunk,
    SourceRecord,
    check_same_chunking,
    check_same_model,
    text_key,
)

INDEX_FORMAT = "rag-zh-index/1"
MANIFEST = "manifest.json"


def library_versions() -> dict[str, str]:
    """Versions that shape the index contents, recorded in the manifest."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"rag": __version__}
    for package in ("faiss-cpu", "bm25s", "jieba", "langchain-text-splitters", "sentence-transformers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


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


class FaissStore:
    """An index directory, loaded into memory (chunks, BM25 tokens, vectors) for searching and writing."""

    def __init__(
        self,
        root: Path,
        manifest: dict[str, Any],
        chunks: list[Chunk],
        tokens: list[list[str]],
        vectors: np.ndarray,
    ) -> None:
        self.root = Path(root)
        self.location = str(self.root)
        self._raw = manifest
        self.chunks = chunks
        self.tokens = tokens
        self._vectors = vectors
        self._faiss: Any = None
        self._bm25: BM25Index | None = None
        self._guard = threading.RLock()  # a refresh swaps the contents while other threads search

    # ---------------------------------------------------------------- construction

    @classmethod
    def empty(cls, root: Path, model_id: str, dim: int, chunking: ChunkingConfig) -> FaissStore:
        manifest: dict[str, Any] = {
            "format": INDEX_FORMAT,
            "generation": None,
            "embedding": {"model_id": model_id, "dim": dim},
            "chunking": chunking.to_dict(),
            "versions": library_versions(),
            "created_at": now_iso(),
            "updated_at": None,
            "n_chunks": 0,
            "documents": [],
            "sources": [],
        }
        return cls(root, manifest, [], [], np.zeros((0, dim), dtype=np.float32))

    @staticmethod
    def exists(root: Path) -> bool:
        return (Path(root) / MANIFEST).is_file()

    @classmethod
    def load(cls, root: Path) -> FaissStore:
        """Read an index; a missing, unreadable or inconsistent one is an :class:`IndexStoreError`."""
        root = Path(root)
        manifest = read_manifest(root)
        generation = root / manifest["generation"]
        try:
            chunks, tokens = _read_chunks(generation / "chunks.jsonl")
            vectors = _read_vectors(generation / "vectors.faiss")
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise IndexStoreError(f"{root}: the index files are damaged ({exc}); rebuild it with `rag ingest --rebuild`") from exc
        dim = manifest["embedding"]["dim"]
        if len(chunks) != manifest["n_chunks"] or vectors.shape != (len(chunks), dim):
            raise IndexStoreError(
                f"{root}: the index is inconsistent ({len(chunks)} chunks, vectors {vectors.shape}, "
                f"manifest says {manifest['n_chunks']} x {dim}); rebuild it with `rag ingest --rebuild`"
            )
        return cls(root, manifest, chunks, tokens, vectors)

    @classmethod
    def open_for_writing(
        cls, root: Path, model_id: str, dim: int, chunking: ChunkingConfig, rebuild: bool = False
    ) -> FaissStore:
        """Load the index at ``root`` (checking model and chunking) or start an empty one."""
        if rebuild or not cls.exists(root):
            return cls.empty(root, model_id, dim, chunking)
        store = cls.load(root)
        store.check_model(model_id, dim)
        check_same_chunking(str(root), store.manifest, chunking)
        return store

    # ---------------------------------------------------------------- properties

    @property
    def manifest(self) -> Manifest:
        raw = self._raw
        return Manifest(
            model_id=raw["embedding"]["model_id"],
            dim=int(raw["embedding"]["dim"]),
            chunking=ChunkingConfig(**raw["chunking"]),
            n_chunks=int(raw["n_chunks"]),
            versions=dict(raw.get("versions") or {}),
            created_at=raw.get("created_at") or "",
            updated_at=raw.get("updated_at"),
        )

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
        return [DocumentRecord(**row) for row in self._raw["documents"]]

    def sources(self) -> dict[str, SourceRecord]:
        return {row["path"]: SourceRecord(**row) for row in self._raw["sources"]}

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

    def search_dense(self, vector: np.ndarray, k: int) -> list[ScoredChunk]:
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        with self._guard:
            if not self.chunks:
                return []
            scores, rows = self.faiss_index().search(query, min(k, len(self.chunks)))
            return [ScoredChunk(self.chunks[int(r)], float(s), int(r)) for r, s in zip(rows[0], scores[0]) if r >= 0]

    def search_lexical(self, query: str, k: int) -> list[ScoredChunk]:
        tokens = tokenize(query)
        with self._guard:
            if not self.chunks:
                return []
            return [ScoredChunk(self.chunks[row], score, row) for row, score in self.bm25_index().search(tokens, k)]

    def known_vectors(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = set(keys)
        found: dict[str, np.ndarray] = {}
        for row, chunk in enumerate(self.chunks):
            key = text_key(chunk)
            if key in wanted:
                found[key] = self._vectors[row]
        return found

    def refresh(self) -> bool:
        """Reload if another process wrote a newer generation; True if it did."""
        if read_manifest(self.root)["generation"] == self.generation:
            return False
        fresh = FaissStore.load(self.root)
        with self._guard:
            self._raw, self.chunks, self.tokens, self._vectors = fresh._raw, fresh.chunks, fresh.tokens, fresh._vectors
            self._faiss = self._bm25 = None
        return True

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
        keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in drop_doc_ids]
        new_vectors = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), self.dim)
        self.replace_contents(
            [self.chunks[i] for i in keep] + list(chunks),
            [self.tokens[i] for i in keep] + [tokenize(c.embed_text) for c in chunks],
            np.concatenate([self._vectors[keep], new_vectors]),
            documents,
            sources,
        )
        self.save()

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
        self._faiss = self._bm25 = None
        self._raw["documents"] = [asdict(d) for d in documents]
        self._raw["sources"] = [asdict(s) for s in sources]
        self._raw["n_chunks"] = len(chunks)

    def save(self) -> None:
        """Write a new generation, switch the manifest to it atomically, drop older generations."""
        import faiss

        self.root.mkdir(parents=True, exist_ok=True)
        previous = self.generation
        number = int(previous.split("-")[1]) + 1 if previous else 1
        name = f"gen-{number:06d}"
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
        staging.chmod(0o755)
        try:
            with open(staging / "chunks.jsonl", "w", encoding="utf-8") as handle:
                for chunk, tokens in zip(self.chunks, self.tokens):
                    handle.write(json.dumps({**asdict(chunk), "tokens": tokens}, ensure_ascii=False) + "\n")
            faiss.write_index(self.faiss_index(), str(staging / "vectors.faiss"))
            target = self.root / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        manifest = {**self._raw, "generation": name, "updated_at": now_iso(), "versions": library_versions()}
        write_json_atomic(self.root / MANIFEST, manifest)
        self._raw = manifest
        for old in self.root.glob("gen-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of ``root``, checked for format and required keys."""
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
    if manifest["format"] != INDEX_FORMAT:
        raise IndexStoreError(f"{path}: index format {manifest['format']!r} is not {INDEX_FORMAT!r}; rebuild it")
    return manifest


def _read_chunks(path: Path) -> tuple[list[Chunk], list[list[str]]]:
    chunks, tokens = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            tokens.append(row.pop("tokens"))
            chunks.append(Chunk(**row))
    return chunks, tokens


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
