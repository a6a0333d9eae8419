"""One process for everything (``rag serve``): the web page at ``/``, the OpenAI-compatible API at
``/v1`` and the MCP server at ``/mcp``, on one port.

All three share one :class:`Components`: one embedder and one LLM in memory, one generation queue
that the page's and the API's questions wait in together, one open index per knowledge base (an
upload through either is found by both at once). The API keeps its own rules (:class:`Gate`: a key
once ``RAG_DB`` has users, else :class:`BrowserGuard`); the page keeps its login (:class:`WebLogins`),
and without one gets the same :class:`BrowserGuard` (no DNS rebinding, no cross-site writes).
``rag serve --no-api`` serves the page alone; ``rag api`` the API alone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.middleware import Middleware

from rag.access import check_exposure, open_allowed
from rag.api.app import create_app
from rag.api.auth import BrowserGuard
from rag.api.server import check_api_exposure, listen
from rag.components import Components
from rag.config import Settings
from rag.index.locations import redact
from rag.web.app import ContentSecurityPolicy, WebApp, page_options, read_logins
from rag.web.logins import WebLogins, import_logins


def create_server(page: WebApp, host: str = "127.0.0.1", with_api: bool = True) -> FastAPI:
    """The app of ``rag serve`` listening on ``host``: ``page`` at ``/`` and, ``with_api``, the API
    (:func:`rag.api.app.create_app`) around the page's own :class:`Components`."""
    if with_api:
        app = create_app(page.models, host=host)
        app.add_route("/mcp", _to_mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    else:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    login = page.logins.required()
    middleware = [Middleware(ContentSecurityPolicy)]
    if not login:
        middleware.append(Middleware(BrowserGuard, bound_host=host))
    demo = page.build().queue(default_concurrency_limit=1)
    options = page_options(page.logins.check if login else None)
    return gr.mount_gradio_app(app, demo, "/", server_name=host, app_kwargs={"middleware": middleware}, **options)


async def _to_mcp(request: Request) -> RedirectResponse:
    """``/mcp`` to ``/mcp/``, as the API alone answers it (the page at ``/`` would take it, with a 404)."""
    return RedirectResponse(request.url.replace(path="/mcp/"), status_code=307)


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth_file: Path | None = None,
    feedback_file: Path | None = None,
    with_api: bool = True,
) -> None:
    """Run the page, the API and MCP until interrupted (``rag serve``): page logins against the users of
    ``RAG_DB`` once there are any (an old ``--auth-file`` or ``RAG_AUTH`` is imported into them once),
    API keys of those users; single-user without users. Beyond loopback both must be protected."""
    logins = read_logins(auth_file, os.environ.get("RAG_AUTH"))
    components = Components(settings)  # loads nothing yet
    if logins:
        import_logins(components, logins, str(Path(auth_file).expanduser().resolve()) if auth_file else "RAG_AUTH")
    check_exposure(
        host, WebLogins(components).required(), open_allowed(), remedy="Add users with `rag users add NAME --password-stdin`"
    )
    if with_api:
        check_api_exposure(host, components, set(), "serve the page alone with --no-api")
    print(f"loading models for {redact(settings.index)} ...", file=sys.stderr)
    page = WebApp(settings, components, feedback_file=feedback_file)
    components.preload()
    app = create_server(page, host, with_api)
    served = "the page" + (", the API at /v1 and MCP at /mcp" if with_api else " (no API: --no-api)")
    print(f"rag serve: http://{host}:{port}/ ({served})", file=sys.stderr)
    listen(app, host, port)
