"""``/v1/models`` and ``/v1/chat/completions``: cited answers, whole or as server-sent events."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from rag.accounts.kbs import KbNotFound
from rag.api.auth import principal_of
from rag.api.chat import MODEL_ID, ChunkStream, completion_body, conversation
from rag.api.deps import ServicesDep
from rag.api.errors import ApiError, api_error_for
from rag.api.pump import pump
from rag.api.schemas import ChatRequest, error_body
from rag.qa.pipeline import Answer

router = APIRouter(prefix="/v1")


@router.get("/models")
async def models(request: Request, services: ServicesDep) -> dict[str, Any]:
    """``rag-zh`` (every KB the caller may read), ``rag-zh:KB`` per readable KB, and the embedding model."""
    created = int(time.time())
    readable = await run_in_threadpool(services.library.readable, principal_of(request))
    embed_model = services.components.settings.embed_model
    ids = ([MODEL_ID] if readable else []) + [f"{MODEL_ID}:{kb.name}" for kb in readable] + [embed_model]
    return {
        "object": "list",
        "data": [{"id": id_, "object": "model", "created": created, "owned_by": "rag-zh"} for id_ in ids],
    }


@router.post("/chat/completions", response_model=None)
async def chat(body: ChatRequest, request: Request, services: ServicesDep) -> JSONResponse | StreamingResponse:
    """A cited answer from the knowledge base; streamed as server-sent events with ``stream: true``."""
    services.loader.require()
    library = services.library
    question, history = conversation(body)
    principal = principal_of(request)
    try:
        kbs = await run_in_threadpool(library.resolve, principal, kbs_of_model(body.model))
    except KbNotFound as exc:
        raise ApiError(404, f"the model {body.model!r} does not exist", code="model_not_found") from exc
    pipeline = await run_in_threadpool(services.components.pipeline_for, kbs)
    where = body.filters.search_filter() if body.filters else None
    stream = pipeline.stream(question, history, body.top_k, where)
    events = library.audited_answer(principal, [kb.name for kb in kbs], question, stream)
    first = await run_in_threadpool(next, events)  # a full queue or a bad question fails here, as JSON
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _sse(first, events, ChunkStream(include_usage, raw=body.rag_raw_stream), request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = await _final_answer(first, events, request)
    return JSONResponse(completion_body(answer))


def kbs_of_model(model: str) -> list[str] | None:
    """The KBs a chat ``model`` names: ``rag-zh:KB`` one, anything else every readable KB (None)."""
    prefix = f"{MODEL_ID}:"
    return [model[len(prefix) :]] if model.startswith(prefix) else None


async def _final_answer(first: Any, events: Any, request: Request) -> Answer:
    """Consume the stream to its answer (giving up the queue place if the client leaves)."""
    if first.kind == "done" and first.answer is not None:
        return first.answer
    async for event in pump(events, request.is_disconnected):
        if event.kind == "done" and event.answer is not None:
            return event.answer
    raise ApiError(499, "the client closed the request", code="client_closed")


async def _sse(first: Any, events: Any, chunks: ChunkStream, request: Request) -> AsyncIterator[str]:
    """The answer as server-sent events, ending with ``data: [DONE]``; errors become an error event."""
    try:
        for payload in chunks.on_event(first):
            yield _sse_line(payload)
        async for event in pump(events, request.is_disconnected):
            for payload in chunks.on_event(event):
                yield _sse_line(payload)
    except Exception as exc:  # noqa: BLE001 - the status line is sent already: report in the stream
        error = api_error_for(exc)
        yield _sse_line(error_body(error.message, error.kind, error.code))
    yield "data: [DONE]\n\n"


def _sse_line(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
