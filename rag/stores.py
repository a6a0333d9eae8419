"""The index directory: a JSON manifest, chunk rows, a FAISS vector index, BM25 tokens.

Layout (see ``index/README.md``)::

    <index>/manifest.json        what is indexed and how; names the current generation
    <index>/gen-000003/chunks.jsonl   one row per chunk, in vector order, with its BM25 tokens
    <index>/gen-000003/vectors.faiss  inner-product index of unit vectors
    <index>/pending/             embeddings of an ingest that has not finished (for resuming)

A write builds a new generation folder, then atomically replaces ``manifest.json``; readers
never see a half-written index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from . import __version__
from .chunking import Chunk, ChunkingConfig
from .errors import IndexStoreError

INDEX_FORMAT = "rag-zh-index/1"
MANIFEST = "manifest.json"


@dataclass
class DocumentRecord:
    """One indexed article as listed in the manifest."""

    doc_id: str
    title: str
    source: str
    content_hash: str
    n_chunks: int
    chars: int
    added_at: str
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class SourceRecord:
    """One ingested file: its hash decides whether a re-ingest has anything to do."""

    path: str
    sha256: str
    doc_ids: list[str]
    added_at: str


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


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


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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


class IndexStore:
    """An index in memory, loaded from (or about to be written to) its directory."""

    def __init__(
        self,
        root: Path,
        manifest: dict[str, Any],
        chunks: list[Chunk],
        tokens: list[list[str]],
        vectors: np.ndarray,
    ) -> None:
        self.root = root
        self.manifest = manifest
        self.chunks = chunks
        self.tokens = tokens
        self._vectors = vectors
        self._faiss = None
        self._bm25 = None

    # ---------------------------------------------------------------- construction

    @classmethod
    def empty(cls, root: Path, model_id: str, dim: int, chunking: ChunkingConfig) -> "IndexStore":
        manifest = {
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
        return (root / MANIFEST).is_file()

    @classmethod
    def load(cls, root: Path) -> "IndexStore":
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

    # ---------------------------------------------------------------- properties

    @property
    def model_id(self) -> str:
        return self.manifest["embedding"]["model_id"]

    @property
    def dim(self) -> int:
        return int(self.manifest["embedding"]["dim"])

    @property
    def chunking(self) -> ChunkingConfig:
        return ChunkingConfig(**self.manifest["chunking"])

    @property
    def generation(self) -> str | None:
        return self.manifest["generation"]

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    def documents(self) -> list[DocumentRecord]:
        return [DocumentRecord(**row) for row in self.manifest["documents"]]

    def sources(self) -> dict[str, SourceRecord]:
        return {row["path"]: SourceRecord(**row) for row in self.manifest["sources"]}

    def check_model(self, model_id: str, dim: int) -> None:
        """Refuse to mix vectors of different models."""
        if model_id != self.model_id or dim != self.dim:
            raise IndexStoreError(
                f"{self.root} was built with embedding model '{self.model_id}' (dim {self.dim}), "
                f"but the current model is '{model_id}' (dim {dim}). Use the same model "
                f"(RAG_EMBED_MODEL={self.model_id}) or rebuild: rag ingest --rebuild ..."
            )

    # ---------------------------------------------------------------- search structures

    def faiss_index(self):
        """Exact inner-product index (cosine on unit vectors), built on first use."""
        if self._faiss is None:
            self._faiss = _flat_index(self._vectors, self.dim)
        return self._faiss

    def bm25_index(self):
        if self._bm25 is None:
            from .lexical import BM25Index

            self._bm25 = BM25Index(self.tokens)
        return self._bm25

    # ---------------------------------------------------------------- writing

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
        self.manifest["documents"] = [asdict(d) for d in documents]
        self.manifest["sources"] = [asdict(s) for s in sources]
        self.manifest["n_chunks"] = len(chunks)

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
        manifest = {**self.manifest, "generation": name, "updated_at": now_iso(), "versions": library_versions()}
        write_json_atomic(self.root / MANIFEST, manifest)
        self.manifest = manifest
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


def _flat_index(vectors: np.ndarray, dim: int):
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
    return index.reconstruct_n(0, index.ntotal)
