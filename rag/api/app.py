"""The OpenAI-compatible HTTP API (FastAPI): chat completions, models, embeddings, search, documents.

:func:`create_app` builds the app around one :class:`Components` (one model in memory, one
generation queue shared by every request) from one router per area (:mod:`rag.api.routes`).
Errors use OpenAI's JSON shape (:mod:`rag.api.errors`); without keys :class:`BrowserGuard` keeps
other sites' pages out. The MCP server is mounted at ``/mcp``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from rag import __version__
from rag.api.auth import Gate, import_keys
from rag.api.body_limit import BodyLimit
from rag.api.deps import Services, ServicesDep
from rag.api.errors import add_error_handlers
from rag.api.loader import ModelLoader
from rag.api.routes import chat, documents, embeddings, search
from rag.components import Components
from rag.library import Library


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
    if keys:
        import_keys(components, keys, keys_source)
    services = Services(components, Library(components), ModelLoader(components))
    mcp_server = None
    if with_mcp:
        from rag.api.mcp_server import build_mcp

        mcp_server = build_mcp(components, services.library)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.loader.start()
        async with contextlib.AsyncExitStack() as stack:
            if mcp_server is not None:
                await stack.enter_async_context(mcp_server.session_manager.run())
            yield

    app = FastAPI(title="rag-zh API", version=__version__, lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.add_middleware(Gate, components=components, bound_host=host)
    app.add_middleware(BodyLimit)
    services.attach(app)
    add_error_handlers(app)

    @app.get("/health")
    async def health(services: ServicesDep) -> dict[str, Any]:
        """Liveness and readiness, without a key."""
        return {"status": "ok", "models_loaded": services.loader.ready, "queue": services.components.queue.waiting()}

    for area in (chat, embeddings, search, documents):
        app.include_router(area.router)
    if mcp_server is not None:
        app.mount("/mcp", mcp_server.streamable_http_app(streamable_http_path="/", host=host))
    return app
