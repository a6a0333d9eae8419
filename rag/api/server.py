"""Running the API (``rag api``, uvicorn) and the MCP server over stdio (``rag mcp``)."""

from __future__ import annotations

import sys
from pathlib import Path

from rag.access import check_exposure, open_allowed, read_api_keys
from rag.accounts.users import Users
from rag.components import Components
from rag.config import Settings
from rag.errors import RagError


def serve_api(settings: Settings, host: str = "127.0.0.1", port: int = 8000, keys_file: Path | None = None) -> None:
    """Run the HTTP API (with the MCP server at ``/mcp``) until interrupted."""
    import uvicorn

    from rag.api.app import create_app

    keys = read_api_keys(keys_file) if keys_file else set()
    components = Components(settings)
    remedy = (
        "Add users and keys (`rag users add`, `rag keys create`) or give --keys-file FILE (one key of 16+ characters per line)"
    )
    check_exposure(host, bool(keys) or Users(components.database()).any(), open_allowed(), protection="API keys", remedy=remedy)
    print(f"rag api: http://{host}:{port}/v1 (models load in the background; /health says when ready)", file=sys.stderr)
    app = create_app(components, keys, host=host, keys_source=str(keys_file))
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    except OSError as exc:
        raise RagError(f"cannot listen on {host}:{port}: {exc}") from exc


def serve_mcp_stdio(settings: Settings) -> None:
    """Run the MCP server on standard input/output (what desktop MCP clients start)."""
    from rag.api.mcp_server import build_mcp

    build_mcp(Components(settings)).run("stdio")
