"""Search over one or several knowledge bases: each KB's hybrid ranking, merged by reciprocal rank.

Scoping happens here: a :class:`KbRetriever` holds only the knowledge bases a request may read, so
whatever uses it (the pipeline, the follow-up rewrite, search, the retrieval test) never sees a
passage of another. Each hit names its KB. BM25 scores of different indexes are not comparable
(each has its own document frequencies), ranks are, so several KBs are fused by rank (RRF).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.index.filters import SearchFilter
from rag.index.store import ScoredChunk
from rag.qa.retriever import CANDIDATES, RRF_K, Rankings, Retriever, SearchHit, SearchMode, _check_k, _fuse, search_mode


@dataclass(frozen=True)
class KbPart:
    """One knowledge base of a search: its name, its retriever and the lock its refreshes take."""

    name: str
    retriever: Retriever
    lock: threading.Lock


class KbRetriever(Retriever):
    """A :class:`Retriever` over the knowledge bases in ``parts`` (at least one), for the pipeline as it is.

    One KB: its own ranking and scores, each hit named. Several: the query is embedded once, each
    KB ranks its top ``max(k, 50)`` by ``mode``, and the rankings are fused by reciprocal rank.
    ``store`` is the first KB's (what a caller that reads one store gets).
    """

    def __init__(self, parts: Sequence[KbPart]) -> None:
        if not parts:
            raise ValueError("a search needs at least one knowledge base")
        self.parts = list(parts)
        first = self.parts[0].retriever
        self.store, self.index_dir, self.embedder = first.store, first.index_dir, first.embedder

    @property
    def kbs(self) -> list[str]:
        return [part.name for part in self.parts]

    def refresh(self) -> bool:
        """Pick up what writers changed, one refresh at a time per KB (two at once could load a segment twice)."""
        changed = False
        for part in self.parts:
            with part.lock:
                changed = part.retriever.refresh() or changed
        return changed

    def search(self, query: str, k: int = 5, mode: SearchMode = "hybrid", where: SearchFilter | None = None) -> list[SearchHit]:
        """Top ``k`` chunks over every KB, each hit naming its KB."""
        search_mode(mode)
        query = _check_k(query, k)
        if len(self.parts) == 1:
            return _named(self.parts[0].retriever.search(query, k, mode, where), self.parts[0].name)
        lists = self._rank(query, max(CANDIDATES, k), where)
        pick = {"dense": 0, "bm25": 1, "hybrid": 2}[mode]
        return _merge([(name, ranked[pick], ranked[1]) for name, ranked in lists], k)

    def rankings(self, query: str, k: int = 5, where: SearchFilter | None = None) -> Rankings:
        """The dense, BM25 and fused lists, each merged over the KBs (the retrieval test)."""
        query = _check_k(query, k)
        if len(self.parts) == 1:
            found = self.parts[0].retriever.rankings(query, k, where)
            name = self.parts[0].name
            return Rankings(_named(found.dense, name), _named(found.bm25, name), _named(found.hybrid, name))
        lists = self._rank(query, max(CANDIDATES, k), where)
        dense, bm25, hybrid = ([(name, ranked[n], ranked[1]) for name, ranked in lists] for n in range(3))
        return Rankings(_merge(dense, k), _merge(bm25, k), _merge(hybrid, k))

    def _rank(self, query: str, pool: int, where: SearchFilter | None) -> list[tuple[str, tuple[list[ScoredChunk], ...]]]:
        """Per KB: (dense, lexical, fused) rankings of the top ``pool``; the query embedded once."""
        vector = self.embedder.embed([query], kind="query")[0]
        lists: list[tuple[str, tuple[list[ScoredChunk], ...]]] = []
        for part in self.parts:
            store = part.retriever.store
            if not store.count():
                continue
            lexical = store.search_lexical(query, pool, where)
            dense = store.search_dense(vector, pool, where)
            lists.append((part.name, (dense, lexical, _fuse(dense, lexical))))
        return lists


def _named(hits: list[SearchHit], kb: str) -> list[SearchHit]:
    return [replace(hit, kb=kb) for hit in hits]


def _merge(rankings: list[tuple[str, list[ScoredChunk], list[ScoredChunk]]], k: int) -> list[SearchHit]:
    """Rankings of several KBs fused by reciprocal rank: (kb, ranked, lexical) -> top ``k`` hits, ties to the earlier KB."""
    scored = []
    for order, (name, ranked, lexical) in enumerate(rankings):
        overlap = {found.row for found in lexical}
        for rank, found in enumerate(ranked, start=1):
            scored.append((1.0 / (RRF_K + rank), order, rank, name, found, found.row in overlap))
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [
        SearchHit(rank=n, chunk=found.chunk, score=score, lexical_overlap=overlap, kb=name)
        for n, (score, _, _, name, found, overlap) in enumerate(scored[:k], start=1)
    ]
