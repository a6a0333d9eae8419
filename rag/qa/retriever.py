"""Hybrid retrieval: dense (FAISS) and BM25 (jieba tokens), fused by reciprocal rank."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from rag.errors import InputError
from rag.index.chunking import Chunk
from rag.index.faiss_store import FaissStore
from rag.index.filters import SearchFilter
from rag.index.store import ScoredChunk, Store, check_same_model
from rag.models.embedders import Embedder

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
RRF_K = 60
CANDIDATES = 50
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class SearchHit:
    """A retrieved chunk; ``score`` is cosine (dense), BM25 (bm25) or fused RRF (hybrid, or several
    knowledge bases); ``kb`` names its knowledge base when the search went through one."""

    rank: int
    chunk: Chunk
    score: float
    lexical_overlap: bool
    kb: str = ""
    parts: tuple[str, ...] = ()  # for a question in several parts: the sub-questions this passage serves

    def to_dict(self) -> dict:
        return {
            **({"kb": self.kb} if self.kb else {}),
            "rank": self.rank,
            "chunk_id": self.chunk.chunk_id,
            "doc_id": self.chunk.doc_id,
            "title": self.chunk.title,
            "source": self.chunk.source,
            "date": self.chunk.date,
            "tags": list(self.chunk.tags),
            "page": self.chunk.page,
            "text": self.chunk.text,
            "score": round(self.score, 6),
            **({"parts": list(self.parts)} if self.parts else {}),
        }


def check_query(query: str) -> str:
    """Strip and validate a question; empty or huge input is an :class:`InputError`."""
    query = (query or "").strip()
    if not query:
        raise InputError("the question is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(f"the question is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    return query


def search_mode(value: str) -> SearchMode:
    """``value`` checked as a search mode; anything else is an :class:`InputError`."""
    if value not in SEARCH_MODES:
        raise InputError(f"unknown search mode '{value}'; choose one of {', '.join(SEARCH_MODES)}")
    return cast(SearchMode, value)


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked row lists: score(row) = sum over lists of 1 / (k + rank); ties go to the lower row."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


@dataclass(frozen=True)
class Rankings:
    """The dense, BM25 and fused lists of one query side by side (the retrieval test page)."""

    dense: list[SearchHit]
    bm25: list[SearchHit]
    hybrid: list[SearchHit]


class Retriever:
    """Searches one store; picks up what another process has written since (``refresh``)."""

    def __init__(self, index: Path | Store, embedder: Embedder) -> None:
        self.store: Store = FaissStore.load(Path(index)) if isinstance(index, (str, Path)) else index
        self.index_dir = Path(self.store.location)
        self.embedder = embedder
        self._check_model()

    def _check_model(self) -> None:
        """Refuse a store built with another embedding model."""
        check_same_model(self.store.location, self.store.manifest, self.embedder.model_id, self.embedder.dim)

    def refresh(self) -> bool:
        """Pick up a newer index written by an ingest or a removal; True if it changed."""
        changed = self.store.refresh()
        if changed:
            self._check_model()
        return changed

    def search(self, query: str, k: int = 5, mode: SearchMode = "hybrid", where: SearchFilter | None = None) -> list[SearchHit]:
        """Top ``k`` chunks for ``query`` among those ``where`` matches (all without it), found by ``mode``."""
        search_mode(mode)
        query = _check_k(query, k)
        store = self.store
        if not store.count():
            return []
        pool = max(CANDIDATES, k)
        lexical = store.search_lexical(query, pool, where)
        if mode == "bm25":
            return _hits(lexical, k, lexical)
        dense = store.search_dense(self.embedder.embed([query], kind="query")[0], pool, where)
        return _hits(dense if mode == "dense" else _fuse(dense, lexical), k, lexical)

    def rankings(self, query: str, k: int = 5, where: SearchFilter | None = None) -> Rankings:
        """The top ``k`` of each retriever and of their fusion, for one query."""
        query = _check_k(query, k)
        if not self.store.count():
            return Rankings([], [], [])
        pool = max(CANDIDATES, k)
        lexical = self.store.search_lexical(query, pool, where)
        dense = self.store.search_dense(self.embedder.embed([query], kind="query")[0], pool, where)
        return Rankings(_hits(dense, k, lexical), _hits(lexical, k, lexical), _hits(_fuse(dense, lexical), k, lexical))


def _check_k(query: str, k: int) -> str:
    """The checked query, once ``k`` is known to be valid."""
    if k < 1:
        raise InputError("k must be at least 1")
    return check_query(query)


def _hits(ranked: list[ScoredChunk], k: int, lexical: list[ScoredChunk]) -> list[SearchHit]:
    """The top ``k`` of ``ranked`` as hits; ``lexical_overlap`` when BM25 found the chunk too."""
    overlap = {found.row for found in lexical}
    return [
        SearchHit(rank=n, chunk=found.chunk, score=found.score, lexical_overlap=found.row in overlap)
        for n, found in enumerate(ranked[:k], start=1)
    ]


def _fuse(dense: list[ScoredChunk], lexical: list[ScoredChunk]) -> list[ScoredChunk]:
    """Dense and lexical results fused by reciprocal rank."""
    chunks = {found.row: found.chunk for found in dense + lexical}
    fused = reciprocal_rank_fusion([[f.row for f in dense], [f.row for f in lexical]])
    return [ScoredChunk(chunks[row], score, row) for row, score in fused]
