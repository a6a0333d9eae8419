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
from collections.abc import Sequence
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
    from rag.accounts.kbs import Kb, KbRegistry
    from rag.index.store import Store
    from rag.qa.kb_search import KbRetriever
    from rag.qa.pipeline import QAPipeline
    from rag.qa.retriever import Retriever

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 3


class Components:
    """The embedder, the store and retriever, the LLM and the pipeline for one :class:`Settings`.

    Each knowledge base gets its own :class:`Components` (:meth:`for_kb`, one owner per open index)
    that ``shares`` this one's models, generation queue and work limit."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        top_k: int = DEFAULT_TOP_K,
        shares: Components | None = None,
    ) -> None:
        self.settings = settings
        self.top_k = top_k
        self._embedder = embedder
        self._generator = generator
        self._retriever: Retriever | None = None
        self._pipeline: QAPipeline | None = None
        self._database: Database | None = None
        self._lock = threading.RLock()
        self._refresh_lock = threading.Lock()  # one refresh of the store at a time
        self._shares = shares
        self._kbs: dict[str, Components] = {}
        # every caller of the one LLM waits in one queue; searches and embeddings: only so many at once
        self.queue: GenerationQueue = shares.queue if shares else GenerationQueue(settings.queue_capacity)
        self.work: WorkLimit = shares.work if shares else WorkLimit(settings.max_concurrent_work)

    def embedder(self) -> Embedder:
        """The embedding model (needed to search and to add documents)."""
        if self._shares is not None:
            return self._shares.embedder()
        with self._lock:
            if self._embedder is None:
                self._embedder = embedders.embedder_for(self.settings)
            return self._embedder

    def generator(self) -> Generator:
        """The LLM."""
        if self._shares is not None:
            return self._shares.generator()
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

    def for_kb(self, kb: Kb) -> Components:
        """The components of knowledge base ``kb``, built once (this one for its own index)."""
        if kb.location == self.settings.index:
            return self
        with self._lock:
            found = self._kbs.get(kb.name)
            if found is None or found.settings.index != kb.location:
                found = Components(self.settings.with_index(kb.location), top_k=self.top_k, shares=self)
                self._kbs[kb.name] = found
            return found

    def searcher(self, kbs: Sequence[Kb]) -> KbRetriever:
        """Search over exactly the knowledge bases ``kbs`` (those a request may read), each hit naming its KB."""
        from rag.qa.kb_search import KbPart, KbRetriever

        owners = [(kb.name, self.for_kb(kb)) for kb in kbs]
        written = [(name, owner) for name, owner in owners if owner.store_exists()]
        owners = written or owners[:1]  # KBs not written yet have nothing to find; none written: the first says so
        return KbRetriever([KbPart(name, owner.retriever(), owner._refresh_lock) for name, owner in owners])

    def pipeline_for(self, kbs: Sequence[Kb]) -> QAPipeline:
        """A pipeline answering from exactly ``kbs``, sharing the one LLM and its queue."""
        from rag.qa.pipeline import QAPipeline

        searcher, generator = self.searcher(kbs), self.generator()
        return QAPipeline(searcher, generator, top_k=self.top_k, queue=self.queue, shown_chars=self.settings.passage_chars)

    def preload(self) -> None:
        """Load both models now, so the first visitor does not wait; a missing index is fine."""
        self.generator()
        try:
            self.pipeline()
        except IndexStoreError as exc:
            if self.store_exists():
                raise
            log.warning("no index yet (%s); documents can be uploaded before asking", exc)
