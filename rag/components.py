"""The one place that assembles the configured components; every entry point asks it.

The CLI, the web chat, the HTTP API, the MCP server and ``rag eval`` all build their embedder,
store, retriever, LLM and pipeline through :class:`Components`. Each is built once, on first
use, and shared by every caller (one model in memory); building a :class:`Components` loads
nothing. Tests inject fakes through the constructor or with ``RAG_EMBED_MODEL=fake:hashing``
and ``RAG_LLM_BACKEND=fake:scripted``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from rag.config import Settings
from rag.errors import IndexStoreError
from rag.models import embedders, generators
from rag.models.embedders import Embedder
from rag.models.generators import Generator
from rag.qa.queue import GenerationQueue, WorkLimit

if TYPE_CHECKING:
    from rag.accounts.audit import AuditLog
    from rag.accounts.db import Database
    from rag.accounts.kbs import KbRegistry
    from rag.index.store import Store
    from rag.qa.pipeline import QAPipeline
    from rag.qa.retriever import Retriever

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 3


class Components:
    """The embedder, the store and retriever, the LLM and the pipeline for one :class:`Settings`."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        top_k: int = DEFAULT_TOP_K,
    ) -> None:
        self.settings = settings
        self.top_k = top_k
        self._embedder = embedder
        self._generator = generator
        self._retriever: Retriever | None = None
        self._pipeline: QAPipeline | None = None
        self._database: Database | None = None
        self._lock = threading.RLock()
        self.queue = GenerationQueue(settings.queue_capacity)  # every caller of the one LLM waits here
        self.work = WorkLimit(settings.max_concurrent_work)  # searches and embeddings: only so many at once

    def embedder(self) -> Embedder:
        """The embedding model (needed to search and to add documents)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = embedders.embedder_for(self.settings)
            return self._embedder

    def generator(self) -> Generator:
        """The LLM."""
        with self._lock:
            if self._generator is None:
                self._generator = generators.make_generator(self.settings)
            return self._generator

    def database(self) -> Database:
        """The server's database (``RAG_DB``): knowledge bases, users, keys, the audit log."""
        from rag.accounts.db import Database

        with self._lock:
            if self._database is None:
                self._database = Database(self.settings.db_file)
            return self._database

    def kbs(self) -> KbRegistry:
        """The knowledge bases (``default`` is the index at ``RAG_INDEX``)."""
        from rag.accounts.kbs import registry_for

        return registry_for(self.settings, self.database())

    def audit(self) -> AuditLog:
        """The audit log (``RAG_AUDIT_QUESTIONS``, ``RAG_AUDIT_DAYS``)."""
        from rag.accounts.audit import audit_for

        return audit_for(self.settings, self.database())

    def open_store(self) -> Store:
        """The index store of the settings, opened for reading; :class:`IndexStoreError` if absent."""
        from rag.index.locations import open_store

        return open_store(self.settings.index)

    def store_exists(self) -> bool:
        """Whether the configured index has been written yet."""
        from rag.index.locations import store_exists

        return store_exists(self.settings.index)

    def retriever(self) -> Retriever:
        """Hybrid search over the index (loaded once, refreshed when an ingest writes it)."""
        from rag.qa.retriever import Retriever

        embedder = self.embedder()
        with self._lock:
            if self._retriever is None:
                self._retriever = Retriever(self.open_store(), embedder)
            return self._retriever

    def pipeline(self) -> QAPipeline:
        """The question-answering pipeline; :class:`IndexStoreError` while there is no index."""
        from rag.qa.pipeline import QAPipeline

        retriever, generator = self.retriever(), self.generator()
        with self._lock:
            if self._pipeline is None:
                self._pipeline = QAPipeline(
                    retriever, generator, top_k=self.top_k, queue=self.queue, shown_chars=self.settings.passage_chars
                )
            return self._pipeline

    def preload(self) -> None:
        """Load both models now, so the first visitor does not wait; a missing index is fine."""
        self.generator()
        try:
            self.pipeline()
        except IndexStoreError as exc:
            if self.store_exists():
                raise
            log.warning("no index yet (%s); documents can be uploaded before asking", exc)
