"""The OpenAI-compatible HTTP API (FastAPI): chat completions, models, embeddings, search, documents.

:func:`create_app` builds the app around one :class:`Components` (one model in memory, one
generation queue shared by every request). Errors use OpenAI's JSON shape: 400 bad request,
401 missing or wrong key, 403 a request from another site or under a foreign host name (without
keys, see :class:`BrowserGuard`), 404 unknown document, 413 body too large, 429 queue full or too
many searches and embeddings at once (with ``Retry-After``), 503 models still loading or no index
yet. The MCP server is mounted at ``/mcp``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag import __version__
from rag.accounts.kbs import DEFAULT_KB, KbNotFound
from rag.accounts.permissions import Forbidden
from rag.api.auth import Gate, import_keys, principal_of
from rag.api.chat import MODEL_ID, ChunkStream, completion_body, conversation
from rag.api.pump import pump
from rag.api.schemas import MAX_EMBED_CHARS, ChatRequest, EmbeddingsRequest, SearchRequest, error_body, error_response
from rag.components import Components
from rag.errors import IndexStoreError, InputError, ModelError, RagError
from rag.index.documents import MAX_FILE_BYTES
from rag.index.uploads import safe_upload_name
from rag.knowledge_base import CheckedUpload, KnowledgeBase
from rag.library import Library
from rag.qa.pipeline import Answer
from rag.qa.queue import Busy

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_UPLOAD_BYTES = MAX_FILE_BYTES + 1024 * 1024  # one file of the largest accepted size, plus the form

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiError(Exception):
    """An error answered with OpenAI's error JSON."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.headers: dict[str, str] = {}


def api_error_for(exc: Exception) -> ApiError:
    """The HTTP status and OpenAI error type for one of the project's errors."""
    if isinstance(exc, Busy):
        error = ApiError(429, str(exc), "rate_limit_error", exc.code)
        error.headers["Retry-After"] = str(exc.retry_after_s)
        return error
    if isinstance(exc, KbNotFound):
        return ApiError(404, str(exc), "invalid_request_error", "kb_not_found")
    if isinstance(exc, Forbidden):
        return ApiError(403, str(exc), "permission_error", "forbidden")
    if isinstance(exc, IndexStoreError):
        return ApiError(503, str(exc), "server_error", "index_not_ready")
    if isinstance(exc, ModelError):
        return ApiError(503, str(exc), "server_error", "model_not_ready")
    if isinstance(exc, RagError):
        return ApiError(400, str(exc), "invalid_request_error")
    log.exception("request failed")
    return ApiError(500, "internal error (details in the server log)", "server_error")


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit (uploads get a larger one), declared or streamed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = MAX_UPLOAD_BYTES if scope["path"].rstrip("/") == "/v1/documents" else MAX_JSON_BYTES
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(limit)(scope, receive, send)
            return
        seen = 0
        started = answered = False

        async def counted() -> MutableMapping[str, Any]:
            """The body, until it passes the limit: then the 413 goes out and the app sees a disconnect.

            Raising here would not work: FastAPI turns any error while it reads a body into a 400.
            """
            nonlocal seen, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen <= limit:
                return message
            if not started:
                await _too_large(limit)(scope, receive, send)
            answered = True
            return {"type": "http.disconnect"}

        async def tracked_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if answered:
                return  # the 413 is the answer; what the app says about the cut-short body is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked_send)


def _too_large(limit: int) -> JSONResponse:
    return error_response(
        413, f"the request body is larger than {limit // (1024 * 1024)} MB", "invalid_request_error", "body_too_large"
    )


class ModelLoader:
    """Loads the models once in the background; requests that need them get 503 until then."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self.error: Exception | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            self.components.preload()
        except Exception as exc:  # noqa: BLE001 - reported on every request
            log.exception("loading the models failed")
            self.error = exc
        finally:
            self._ready.set()

    @property
    def ready(self) -> bool:
        """Loaded without error (a missing index does not count as an error)."""
        return self._ready.is_set() and self.error is None

    def require(self) -> None:
        """Raise 503 while loading (or when loading failed)."""
        if not self._ready.is_set():
            error = ApiError(503, "the models are still loading; try again shortly", "server_error", "model_not_ready")
            error.headers["Retry-After"] = "10"
            raise error
        if self.error is not None:
            raise ApiError(503, f"the models could not be loaded: {self.error}", "server_error", "model_not_ready")


def create_app(
    components: Components,
    keys: set[str] | None = None,
    with_mcp: bool = True,
    host: str = "127.0.0.1",
    keys_source: str = "--keys-file",
) -> FastAPI:
    """The API for ``components`` listening on ``host``. Once the database has users, every request
    needs one of their keys (``/mcp`` too; ``keys`` of a ``--keys-file`` are imported as user ``api``'s
    once); without users :class:`BrowserGuard` keeps other sites' pages out (see :mod:`rag.api.auth`)."""
    loader = ModelLoader(components)
    if keys:
        import_keys(components, keys, keys_source)
    library = Library(components)
    mcp_server = None
    if with_mcp:
        from rag.api.mcp_server import build_mcp

        mcp_server = build_mcp(components, library)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader.start()
        async with contextlib.AsyncExitStack() as stack:
            if mcp_server is not None:
                await stack.enter_async_context(mcp_server.session_manager.run())
            yield

    app = FastAPI(title="rag-zh API", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.add_middleware(Gate, components=components, bound_host=host)
    app.add_middleware(BodyLimit)
    app.state.loader = loader

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.kind, exc.code, exc.headers)

    @app.exception_handler(RagError)
    async def on_rag_error(request: Request, exc: RagError) -> JSONResponse:
        error = api_error_for(exc)
        return error_response(error.status, error.message, error.kind, error.code, error.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else str(first.get("msg", "invalid request"))
        return JSONResponse(error_body(message, "invalid_request_error", param=where or None), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), "invalid_request_error")

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, "internal error (details in the server log)", "server_error")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and readiness, without a key."""
        return {"status": "ok", "models_loaded": loader.ready, "queue": components.queue.waiting()}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        """``rag-zh`` (every KB the caller may read), ``rag-zh:KB`` per readable KB, and the embedding model."""
        created = int(time.time())
        readable = await run_in_threadpool(library.readable, principal_of(request))
        ids = ([MODEL_ID] if readable else []) + [f"{MODEL_ID}:{kb.name}" for kb in readable] + [components.settings.embed_model]
        return {
            "object": "list",
            "data": [{"id": id_, "object": "model", "created": created, "owned_by": "rag-zh"} for id_ in ids],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, request: Request) -> JSONResponse | StreamingResponse:
        """A cited answer from the knowledge base; streamed as server-sent events with ``stream: true``."""
        loader.require()
        question, history = conversation(body)
        principal = principal_of(request)
        try:
            kbs = await run_in_threadpool(library.resolve, principal, kbs_of_model(body.model))
        except KbNotFound as exc:
            raise ApiError(404, f"the model {body.model!r} does not exist", code="model_not_found") from exc
        pipeline = await run_in_threadpool(components.pipeline_for, kbs)
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

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingsRequest) -> dict[str, Any]:
        """Vectors from the knowledge base's embedding model (texts as given unless ``input_type`` is set);
        429 past ``RAG_MAX_CONCURRENT_WORK`` searches and embeddings at once."""
        loader.require()
        texts = body.texts()
        if not texts:
            raise ApiError(400, "input must not be empty")
        for n, text in enumerate(texts):
            if not text.strip():
                raise ApiError(400, f"input[{n}] is empty")
            if len(text) > MAX_EMBED_CHARS:
                raise ApiError(400, f"input[{n}] has {len(text)} characters; the limit is {MAX_EMBED_CHARS}")
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

    @app.post("/v1/search")
    async def search(body: SearchRequest, request: Request) -> dict[str, Any]:
        """The passages retrieval finds for a query in the ``kb`` named (every readable one without it),
        with scores; never waits for the LLM (429 past ``RAG_MAX_CONCURRENT_WORK`` searches and embeddings at once)."""
        loader.require()
        where = body.search_filter()
        principal = principal_of(request)
        with components.work.slot():
            retriever = await run_in_threadpool(library.searcher, principal, body.kbs())
            hits = await run_in_threadpool(retriever.search, body.query, body.top_k, body.mode, where)
        library.record(principal, "search", retriever.kbs, body.query)
        return {
            "object": "list",
            "query": body.query,
            "mode": body.mode,
            **({"filters": where.to_dict()} if where else {}),
            "data": [hit.to_dict() for hit in hits],
        }

    @app.get("/v1/documents")
    async def list_documents(request: Request, kb: list[str] | None = Query(None)) -> dict[str, Any]:  # noqa: B008
        """Every document of the ``kb`` named (repeatable; every readable KB without it), each naming its KB."""
        found = await run_in_threadpool(library.documents, principal_of(request), kb)
        return {"object": "list", "data": [{"kb": name, **asdict(record)} for name, record in found]}

    @app.post("/v1/documents")
    async def upload_documents(
        request: Request,
        files: list[UploadFile] = File(...),  # noqa: B008 - FastAPI's form syntax
        kb: str = Form(DEFAULT_KB),
    ) -> dict[str, Any]:
        """Add files to KB ``kb`` (an editor's; the same type, size and name checks as the web page)."""
        loader.require()
        principal = principal_of(request)
        base = await run_in_threadpool(library.editable, principal, kb)
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
            accepted, refused = await _receive_uploads(files, Path(folder), base)
            report = await run_in_threadpool(base.add, accepted) if accepted else None
        names = ", ".join(upload.filename or "" for upload in files)
        library.record(principal, "upload", [kb], names, "error" if refused or (report and report.files_failed) else "ok")
        failed = refused + [
            {"file": Path(path).name, "error": message} for path, message in (report.files_failed if report else [])
        ]
        return {
            "added": report.documents_added if report else [],
            "replaced": report.documents_replaced if report else [],
            "unchanged": [Path(path).name for path in report.files_unchanged] if report else [],
            "failed": failed,
            "warnings": report.warnings if report else [],
            "chunks_embedded": report.chunks_embedded if report else 0,
        }

    @app.delete("/v1/documents/{doc_id}")
    async def delete_document(doc_id: str, request: Request, kb: str = DEFAULT_KB) -> dict[str, Any]:
        """Remove one document of KB ``kb`` (an editor's; its uploaded file too once nothing else uses it)."""
        principal = principal_of(request)
        base = await run_in_threadpool(library.editable, principal, kb)
        if doc_id not in {record.doc_id for record in await run_in_threadpool(base.documents)}:
            raise ApiError(404, f"no document {doc_id!r} in the knowledge base", code="document_not_found")
        record = await run_in_threadpool(base.delete, doc_id)
        library.record(principal, "delete", [kb], record.title)
        return {"deleted": record.doc_id, "title": record.title}

    if mcp_server is not None:
        app.mount("/mcp", mcp_server.streamable_http_app(streamable_http_path="/", host=host))
    return app


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


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    """A vector as a JSON list, or base64 of little-endian float32 (what the openai client asks for)."""
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


async def _receive_uploads(
    files: list[UploadFile], folder: Path, kb: KnowledgeBase
) -> tuple[list[CheckedUpload], list[dict[str, str]]]:
    """Write each upload to ``folder`` (size-capped) and check it; (accepted, refused)."""
    accepted: list[CheckedUpload] = []
    refused: list[dict[str, str]] = []
    for number, upload in enumerate(files):
        name = upload.filename or ""
        try:
            temp = folder / str(number) / safe_upload_name(name)  # the loader goes by the file's suffix
            temp.parent.mkdir()
            size = 0
            with open(temp, "wb") as handle:
                while block := await upload.read(1024 * 1024):
                    size += len(block)
                    if size > MAX_FILE_BYTES:
                        break
                    handle.write(block)
            if size > MAX_FILE_BYTES:
                raise InputError(f"“{name}”：文件超过 {MAX_FILE_BYTES / 1e6:.0f} MB 的上限")
            accepted.append(await run_in_threadpool(kb.check, temp, name))
        except InputError as exc:
            refused.append({"file": name, "error": str(exc)})
    return accepted, refused


def kbs_of_model(model: str) -> list[str] | None:
    """The KBs a chat ``model`` names: ``rag-zh:KB`` one, anything else every readable KB (None)."""
    prefix = f"{MODEL_ID}:"
    return [model[len(prefix) :]] if model.startswith(prefix) else None
