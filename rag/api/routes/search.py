"""``/v1/search``: the passages retrieval finds, with scores, without the LLM."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from rag.api.auth import principal_of
from rag.api.deps import ServicesDep
from rag.api.schemas import SearchRequest

router = APIRouter(prefix="/v1")


@router.post("/search")
async def search(body: SearchRequest, request: Request, services: ServicesDep) -> dict[str, Any]:
    """The passages retrieval finds for a query in the ``kb`` named (every readable one without it),
    with scores; never waits for the LLM (429 past ``RAG_MAX_CONCURRENT_WORK`` searches and embeddings at once)."""
    services.loader.require()
    where = body.search_filter()
    principal = principal_of(request)
    with services.components.work.slot():
        retriever = await run_in_threadpool(services.library.searcher, principal, body.kbs())
        hits = await run_in_threadpool(retriever.search, body.query, body.top_k, body.mode, where)
    services.library.record(principal, "search", retriever.kbs, body.query)
    return {
        "object": "list",
        "query": body.query,
        "mode": body.mode,
        **({"filters": where.to_dict()} if where else {}),
        "data": [hit.to_dict() for hit in hits],
    }
