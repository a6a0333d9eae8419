"""The store conformance tests, run against every backend."""

from __future__ import annotations

from store_conformance import StoreConformance

from rag.index.chunking import ChunkingConfig
from rag.index.faiss_store import FaissStore
from rag.index.locations import milvus_target
from rag.index.milvus_store import MilvusStore
from rag.index.store import Store


class TestFaissStore(StoreConformance):
    def new_store(self, tmp_path, model_id: str, dim: int, chunking: ChunkingConfig) -> Store:
        return FaissStore.open_for_writing(tmp_path / "index", model_id, dim, chunking)

    def reopen(self, store: Store) -> Store:
        return FaissStore.load(store.location)


class TestMilvusLiteStore(StoreConformance):
    """A Milvus Lite file in ``tmp_path`` (Milvus Lite runs in-process: a new file starts in milliseconds)."""

    def new_store(self, tmp_path, model_id: str, dim: int, chunking: ChunkingConfig) -> Store:
        return MilvusStore.open_for_writing(milvus_target(f"milvus-lite://{tmp_path}/kb.db"), model_id, dim, chunking)

    def reopen(self, store: Store) -> Store:
        return MilvusStore.load(milvus_target(store.location))
