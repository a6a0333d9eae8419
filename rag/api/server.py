"""Running the API alone (``rag api``, uvicorn) and the MCP server over stdio (``rag mcp``)."""

from __future__ import annotations

import sys
from pathlib import Path

from starlette.types import ASGIApp

from rag.access import check_exposure, open_allowed, read_api_keys
from rag.accounts.users import Users
from rag.components import Components
from rag.config import Settings
from rag.errors import RagError


def serve_api(settings: Settings, host: str = "127.0.0.1", port: int = 8000, keys_file: Path | None = None) -> None:
    """Run the HTTP API (with the MCP server at ``/mcp``) until interrupted."""
    from rag.api.app import create_app

    keys = read_api_keys(keys_file) if keys_file else set()
    components = Components(settings)
    check_api_exposure(host, components, keys, "give --keys-file FILE (one key of 16+ characters per line)")
    print(f"rag api: http://{host}:{port}/v1 (models load in the background; /health says when ready)", file=sys.stderr)
    listen(create_app(components, keys, host=host, keys_source=str(keys_file)), host, port)


def listen(app: ASGIApp, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn on ``host:port`` until interrupted."""
    import uvicorn

    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    except OSError as exc:
        raise RagError(f"cannot listen on {host}:{port}: {exc}") from exc


def check_api_exposure(host: str, components: Components, keys: set[str], otherwise: str) -> None:
    """Refuse to serve the API beyond loopback without keys (of users in ``RAG_DB``, or ``keys`` to import)
    unless ``RAG_ALLOW_OPEN=1``; ``otherwise`` is the remedy besides adding users and keys."""
    has_keys = bool(keys) or Users(components.database()).any()
    remedy = f"Add users and keys (`rag users add`, `rag keys create`) or {otherwise}"
    check_exposure(host, has_keys, open_allowed(), protection="API keys", remedy=remedy)


def serve_mcp_stdio(settings: Settings) -> None:
    """Run the MCP server on standard input/output (what desktop MCP clients start)."""
    from rag.api.mcp_server import build_mcp

    build_mcp(Components(settings)).run("stdio")
