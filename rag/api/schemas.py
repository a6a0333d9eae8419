"""Request bodies of the HTTP API (OpenAI's shapes; unknown fields are accepted and ignored)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.index.filters import SearchFilter
from rag.index.locations import redact
from rag.qa.retriever import MAX_QUERY_CHARS

MAX_MESSAGES = 100
MAX_MESSAGE_CHARS = 20_000
MAX_EMBED_INPUTS = 256
MAX_EMBED_CHARS = 8_192
MAX_FILTER_VALUES = 100
MAX_DATE_CHARS = 32


class Filters(BaseModel):
    """Search filters (our extension): ISO date bounds (inclusive), any of ``sources`` (ingested file
    paths as ``GET /v1/documents`` lists them), any of ``tags``."""

    model_config = ConfigDict(extra="forbid")
    date_from: str | None = Field(default=None, max_length=MAX_DATE_CHARS)
    date_to: str | None = Field(default=None, max_length=MAX_DATE_CHARS)
    sources: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    tags: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)

    def search_filter(self) -> SearchFilter:
        """The checked filter; a bad date is an :class:`~rag.errors.InputError` (400)."""
        return SearchFilter.of(self.date_from, self.date_to, self.sources, self.tags)


class TextPart(BaseModel):
    """One part of a multi-part message; only text parts carry a question."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = Field(default=None, max_length=MAX_MESSAGE_CHARS)

    def text(self) -> str:
        """The message's text (text parts joined; images and other parts ignored)."""
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``. ``top_k`` (passages shown to the model), ``filters`` (which
    passages retrieval may use) and ``rag_raw_stream`` are our extensions.

    A stream sends only verified text by default: whole sentences once the citation check keeps
    them, so what a client assembles is always a prefix of the final answer. ``rag_raw_stream:
    true`` streams the model's raw tokens as it writes them instead, including drafts that are
    then withheld or retried; only for clients that show the ``answer`` field of the last chunk
    (the checked answer) in place of the streamed text.
    """

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    top_k: int | None = Field(default=None, ge=1, le=10)
    filters: Filters | None = None
    rag_raw_stream: bool = False


class EmbeddingsRequest(BaseModel):
    """``POST /v1/embeddings``. ``input_type`` (``query``/``passage``: add the model's prefix) is our extension."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=200)
    input: str | list[str] = Field(max_length=MAX_EMBED_INPUTS)
    encoding_format: Literal["float", "base64"] = "float"
    input_type: Literal["query", "passage"] | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class SearchRequest(Filters):
    """``POST /v1/search``: the passages retrieval finds, without the LLM (filter fields at the top level)."""

    model_config = ConfigDict(extra="allow")
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=5, ge=1, le=50)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    kb: str | list[str] | None = Field(default=None, max_length=MAX_FILTER_VALUES)

    def kbs(self) -> list[str] | None:
        """The knowledge bases named (None: every readable one)."""
        return [self.kb] if isinstance(self.kb, str) else self.kb or None


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}`` (credentials in URIs hidden)."""
    return {"error": {"message": redact(message), "type": kind, "param": param, "code": code}}


def error_response(
    status: int, message: str, kind: str, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error answered in OpenAI's shape."""
    return JSONResponse(error_body(message, kind, code), status_code=status, headers=headers)
