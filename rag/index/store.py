"""The ``Store`` protocol: what any index backend provides, and the records it keeps.

A store holds chunks with their dense vectors and a lexical (BM25) index, the list of documents
and of ingested source files, and a :class:`Manifest` (embedding model, dimension, chunking)
checked on open. :class:`rag.index.faiss_store.FaissStore` (an index directory) implements it in
full; ``tests/store_conformance.py`` is the test class any other backend must pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rag import __version__
from rag.errors import IndexStoreError
from rag.files import now_iso
from rag.index.chunking import Chunk, ChunkingConfig
from rag.index.filters import SearchFilter
from rag.index.lexical import LEXICAL_SCHEME


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
    date: str = ""  # ISO publication date, "" when the file states none
    tags: list[str] = field(default_factory=list)


@dataclass
class SourceRecord:
    """One ingested file: its hash decides whether a re-ingest has anything to do."""

    path: str
    sha256: str
    doc_ids: list[str]
    added_at: str


@dataclass(frozen=True)
class Manifest:
    """What a store was built with; a store refuses vectors of another model or chunking."""

    model_id: str
    dim: int
    chunking: ChunkingConfig
    n_chunks: int
    versions: dict[str, str]
    created_at: str
    updated_at: str | None
    lexical: str = ""  # how the lexical side was tokenized (``LEXICAL_SCHEME``); "" before it was recorded

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Manifest:
        """The typed view of a stored manifest dict (see :func:`new_manifest`)."""
        return cls(
            model_id=raw["embedding"]["model_id"],
            dim=int(raw["embedding"]["dim"]),
            chunking=ChunkingConfig(**raw["chunking"]),
            n_chunks=int(raw["n_chunks"]),
            versions=dict(raw.get("versions") or {}),
            created_at=raw.get("created_at") or "",
            updated_at=raw.get("updated_at"),
            lexical=str(raw.get("lexical") or ""),
        )


def new_manifest(
    store_format: str, model_id: str, dim: int, chunking: ChunkingConfig, versions: dict[str, str]
) -> dict[str, Any]:
    """The manifest dict of an empty store: the keys every backend keeps (a backend may add its own)."""
    return {
        "format": store_format,
        "embedding": {"model_id": model_id, "dim": dim},
        "chunking": chunking.to_dict(),
        "lexical": LEXICAL_SCHEME,
        "versions": versions,
        "created_at": now_iso(),
        "updated_at": None,
        "n_chunks": 0,
        "documents": [],
        "sources": [],
    }


def documents_of(raw: Mapping[str, Any]) -> list[DocumentRecord]:
    """The document records of a stored manifest dict."""
    return [DocumentRecord(**row) for row in raw["documents"]]


def sources_of(raw: Mapping[str, Any]) -> dict[str, SourceRecord]:
    """The source records of a stored manifest dict, by path."""
    return {row["path"]: SourceRecord(**row) for row in raw["sources"]}


def library_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Versions that shape the index contents, recorded in the manifest (plus a backend's ``extra``)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"rag": __version__}
    for package in ("faiss-cpu", "scipy", "jieba", "opencc", "langchain-text-splitters", "sentence-transformers", *extra):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class ScoredChunk:
    """A chunk found by one retriever with its score (cosine for dense, BM25 for lexical).

    ``row`` is the chunk's stable number in its store: fusion breaks ties by it.
    """

    chunk: Chunk
    score: float
    row: int


def text_key(chunk: Chunk) -> str:
    """Cache key of a chunk's embedding: the hash of exactly what is embedded."""
    return hashlib.sha1(chunk.embed_text.encode("utf-8")).hexdigest()


def check_same_model(location: str, manifest: Manifest, model_id: str, dim: int) -> None:
    """Refuse to mix vectors of different models (or of the fp32 and int8 variants of one model)."""
    if model_id != manifest.model_id or dim != manifest.dim:
        model, _, variant = manifest.model_id.partition("#")
        use = f"RAG_EMBED_MODEL={model} RAG_EMBED_PRECISION={variant or 'fp32'}"
        raise IndexStoreError(
            f"{location} was built with embedding model '{manifest.model_id}' (dim {manifest.dim}), "
            f"but the current model is '{model_id}' (dim {dim}). Use the same model ({use}) "
            "or rebuild: rag ingest --rebuild ..."
        )


def check_same_chunking(location: str, manifest: Manifest, chunking: ChunkingConfig) -> None:
    """Refuse chunks made with other settings than the store's."""
    if manifest.chunking != chunking:
        raise IndexStoreError(
            f"{location} was chunked with {manifest.chunking.to_dict()}, not {chunking.to_dict()}; "
            "use the same settings or rebuild with `rag ingest --rebuild`"
        )


def lexical_is_current(manifest: Manifest) -> bool:
    """Whether the store's lexical side was tokenized as :func:`rag.index.lexical.tokenize` does now."""
    return manifest.lexical == LEXICAL_SCHEME


@runtime_checkable
class EmbeddingJournal(Protocol):
    """Embeddings of an unfinished ingest, kept batch by batch so a rerun does not redo them."""

    vectors: dict[str, np.ndarray]

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Keep one embedded batch durably."""
        ...

    def clear(self) -> None:
        """Forget everything (the ingest finished)."""
        ...


@runtime_checkable
class Store(Protocol):
    """An index backend: chunks with vectors and a lexical index, documents, sources, a manifest."""

    location: str

    @property
    def manifest(self) -> Manifest:
        """What the store was built with."""
        ...

    def count(self) -> int:
        """How many chunks it holds."""
        ...

    def documents(self) -> list[DocumentRecord]:
        """Every indexed document."""
        ...

    def sources(self) -> dict[str, SourceRecord]:
        """Every ingested source file, by path."""
        ...

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        """The chunks of one document in reading order (``[]`` for an unknown ``doc_id``)."""
        ...

    def search_dense(self, vector: np.ndarray, k: int, where: SearchFilter | None = None) -> list[ScoredChunk]:
        """The ``k`` chunks nearest to a unit ``(dim,)`` or ``(1, dim)`` query vector, best first.

        With ``where``, the ``k`` nearest among the chunks it matches (filtered inside the search,
        not after a fixed top-k)."""
        ...

    def search_lexical(self, query: str, k: int, where: SearchFilter | None = None) -> list[ScoredChunk]:
        """The ``k`` best BM25 matches of ``query`` (chunks sharing no word are left out), among the
        chunks ``where`` matches."""
        ...

    def known_vectors(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors of the chunks whose :func:`text_key` is among ``keys``."""
        ...

    def embedding_journal(self, model_id: str) -> EmbeddingJournal:
        """Where an ingest keeps the batches it embedded until it commits."""
        ...

    def commit(
        self,
        drop_doc_ids: Collection[str],
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        documents: Sequence[DocumentRecord],
        sources: Sequence[SourceRecord],
    ) -> None:
        """Atomically drop the chunks of ``drop_doc_ids``, add ``chunks`` with their vectors, and
        make ``documents`` and ``sources`` the complete lists."""
        ...

    def refresh(self) -> bool:
        """Pick up a write made by another process; True if anything changed."""
        ...
