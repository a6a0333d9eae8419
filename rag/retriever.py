"""Hybrid retrieval: dense (FAISS) and BM25 (jieba tokens), fused by reciprocal rank."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .chunking import Chunk
from .embedders import Embedder
from .errors import InputError
from .lexical import tokenize
from .stores import IndexStore, read_manifest

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
RRF_K = 60
CANDIDATES = 50
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class SearchHit:
    """A retrieved chunk; ``score`` is cosine (dense), BM25 (bm25) or fused RRF (hybrid)."""

    rank: int
    chunk: Chunk
    score: float
    lexical_overlap: bool

    def to_dict(self) -> dict:
        return {
            "rank": self.rank,
            "chunk_id": self.chunk.chunk_id,
            "doc_id": self.chunk.doc_id,
            "title": self.chunk.title,
            "source": self.chunk.source,
            "text": self.chunk.text,
            "score": round(self.score, 6),
        }


def check_query(query: str) -> str:
    """Strip and validate a question; empty or huge input is an :class:`InputError`."""
    query = (query or "").strip()
    if not query:
        raise InputError("the question is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(f"the question is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    return query


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked row lists: score(row) = sum over lists of 1 / (k + rank)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


class Retriever:
    """Searches one index directory; reloads it when another process has written a new generation."""

    def __init__(self, index_dir: Path, embedder: Embedder) -> None:
        self.index_dir = Path(index_dir)
        self.embedder = embedder
        self.store = self._load()

    def _load(self) -> IndexStore:
        store = IndexStore.load(self.index_dir)
        store.check_model(self.embedder.model_id, self.embedder.dim)
        return store

    def refresh(self) -> bool:
        """Pick up a newer generation written by an ingest or a removal; True if it changed."""
        if read_manifest(self.index_dir)["generation"] == self.store.generation:
            return False
        self.store = self._load()
        return True

    def search(self, query: str, k: int = 5, mode: SearchMode = "hybrid") -> list[SearchHit]:
        """Top ``k`` chunks for ``query``."""
        if mode not in SEARCH_MODES:
            raise InputError(f"unknown search mode '{mode}'; choose one of {', '.join(SEARCH_MODES)}")
        if k < 1:
            raise InputError("k must be at least 1")
        query = check_query(query)
        store = self.store
        if not store.chunks:
            return []
        pool = max(CANDIDATES, k)
        lexical = store.bm25_index().search(tokenize(query), pool)
        overlap = {row for row, _ in lexical}
        if mode == "bm25":
            ranked = lexical
        else:
            dense = self._dense(query, pool)
            ranked = dense if mode == "dense" else reciprocal_rank_fusion(
                [[row for row, _ in dense], [row for row, _ in lexical]]
            )
        return [
            SearchHit(rank=n, chunk=store.chunks[row], score=score, lexical_overlap=row in overlap)
            for n, (row, score) in enumerate(ranked[:k], start=1)
        ]

    def _dense(self, query: str, pool: int) -> list[tuple[int, float]]:
        vector = self.embedder.embed([query], kind="query")
        scores, rows = self.store.faiss_index().search(vector, min(pool, len(self.store.chunks)))
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]
