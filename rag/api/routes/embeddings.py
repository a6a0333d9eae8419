"""``/v1/embeddings``: vectors from the knowledge base's embedding model."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from rag.api.deps import ServicesDep
from rag.api.errors import ApiError
from rag.api.schemas import MAX_EMBED_CHARS, EmbeddingsRequest

router = APIRouter(prefix="/v1")


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, services: ServicesDep) -> dict[str, Any]:
    """Vectors from the knowledge base's embedding model (texts as given unless ``input_type`` is set);
    429 past ``RAG_MAX_CONCURRENT_WORK`` searches and embeddings at once."""
    services.loader.require()
    texts = body.texts()
    if not texts:
        raise ApiError(400, "input must not be empty")
    for n, text in enumerate(texts):
        if not text.strip():
            raise ApiError(400, f"input[{n}] is empty")
        if len(text) > MAX_EMBED_CHARS:
            raise ApiError(400, f"input[{n}] has {len(text)} characters; the limit is {MAX_EMBED_CHARS}")
    components = services.components
    embedder = components.embedder()
    with components.work.slot():
        vectors = await run_in_threadpool(embedder.embed, texts, body.input_type or "raw")
    counter = getattr(embedder, "count_tokens", None)
    tokens = int(counter(texts)) if counter else sum(len(text) for text in texts)
    return {
        "object": "list",
        "model": embedder.model_id,
        "data": [
            {"object": "embedding", "index": n, "embedding": _encode(vector, body.encoding_format)}
            for n, vector in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    """A vector as a JSON list, or base64 of little-endian float32 (what the openai client asks for)."""
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
