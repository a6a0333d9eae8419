"""Errors of the HTTP API in OpenAI's JSON shape, and the handlers that answer them.

400 bad request, 401 missing or wrong key, 403 forbidden (another site's page, a foreign host name,
a KB the caller may not use), 404 unknown KB or document, 413 body too large, 429 queue full or too
many searches and embeddings at once (with ``Retry-After``), 503 models still loading or no index yet.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.accounts.kbs import KbNotFound
from rag.accounts.permissions import Forbidden
from rag.api.schemas import error_body, error_response
from rag.errors import IndexStoreError, ModelError, RagError
from rag.qa.queue import Busy

log = logging.getLogger(__name__)


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


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with OpenAI's error JSON (details of unexpected ones go to the log only)."""

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
