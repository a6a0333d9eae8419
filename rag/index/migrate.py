"""Copying an index directory into another store (a Milvus URI, say) without embedding anything again."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rag.errors import IndexStoreError
from rag.index.faiss_store import FaissStore
from rag.index.locations import open_store_for_writing, write_lock


@dataclass(frozen=True)
class MigrateReport:
    """What a migration copied."""

    documents: int
    sources: int
    chunks: int
    seconds: float


def migrate(source: Path, target: str, rebuild: bool = False) -> MigrateReport:
    """Copy the chunks, vectors, documents, sources, model and chunking of the index directory
    ``source`` into the store at ``target``, which must be new or empty (``rebuild`` empties it)."""
    started = time.perf_counter()
    origin = FaissStore.load(Path(source))
    manifest = origin.manifest
    with write_lock(target):
        store = open_store_for_writing(target, manifest.model_id, manifest.dim, manifest.chunking, rebuild)
        if store.count() or store.documents():
            raise IndexStoreError(
                f"{store.location} already holds an index ({len(store.documents())} documents); "
                "migrate into a new one, or pass --rebuild to replace it"
            )
        documents, sources = origin.documents(), list(origin.sources().values())
        store.commit([], origin.chunks, origin.vectors, documents, sources)
    return MigrateReport(len(documents), len(sources), store.count(), time.perf_counter() - started)
