"""The request body limit of the HTTP API (its paths only): 413 past it, whether declared or streamed."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.api.auth import is_api_path
from rag.api.schemas import error_response
from rag.index.documents import MAX_FILE_BYTES

MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_UPLOAD_BYTES = MAX_FILE_BYTES + 1024 * 1024  # one file of the largest accepted size, plus the form


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit (uploads get a larger one), declared or streamed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)  # the web page of `rag serve` has Gradio's own upload limit
            return
        limit = MAX_UPLOAD_BYTES if scope["path"].rstrip("/") == "/v1/documents" else MAX_JSON_BYTES
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await too_large(limit)(scope, receive, send)
            return
        seen = 0
        started = answered = False

        async def counted() -> Message:
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
                await too_large(limit)(scope, receive, send)
            answered = True
            return {"type": "http.disconnect"}

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 is the answer; what the app says about the cut-short body is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked_send)


def too_large(limit: int) -> JSONResponse:
    """The 413 answer for a body over ``limit`` bytes."""
    return error_response(
        413, f"the request body is larger than {limit // (1024 * 1024)} MB", "invalid_request_error", "body_too_large"
    )
