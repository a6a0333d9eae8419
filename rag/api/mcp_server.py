"""The MCP server (official ``mcp`` SDK): the knowledge base as tools an agent can call.

``rag mcp`` serves it over stdio; ``rag api`` mounts the same server at ``/mcp`` (streamable
HTTP). Tool descriptions are in Chinese and English so agents in either language pick them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field
from starlette.requests import Request

from rag import __version__
from rag.accounts.users import Principal
from rag.api.auth import principal_of
from rag.api.schemas import MAX_DATE_CHARS, MAX_FILTER_VALUES
from rag.components import Components
from rag.errors import RagError
from rag.index.filters import SearchFilter
from rag.index.locations import redact
from rag.library import Library
from rag.qa.pipeline import Answer, Event
from rag.qa.retriever import check_query

INSTRUCTIONS = (
    "本服务器提供一个中文文章知识库。先用 search_knowledge_base 查找段落，或用 ask_knowledge_base 直接得到带 [n] 引用的回答。"
    " A knowledge base of Chinese articles: search_knowledge_base finds passages, ask_knowledge_base answers with [n] citations."
)

# Filter arguments, bounded as in the HTTP API (the SDK checks them and lists the bounds in the tool schemas)
DateArg = Annotated[str | None, Field(max_length=MAX_DATE_CHARS)]
ValuesArg = Annotated[list[str] | None, Field(max_length=MAX_FILTER_VALUES)]
KbArg = Annotated[str | None, Field(max_length=40, description="知识库名称 / knowledge base name (default: all you may read)")]


@contextmanager
def tool_errors() -> Iterator[None]:
    """The project's errors reach the agent as their message (a busy server, a bad date, no index yet);
    the SDK would show only "Error executing tool" for them. Anything else stays a crash."""
    try:
        yield
    except RagError as exc:
        raise ToolError(redact(str(exc))) from exc


def build_mcp(components: Components, library: Library | None = None) -> MCPServer:
    """The MCP server over ``components`` (models load on the first tool call that needs them). Over
    HTTP each call acts as the key of its request (:mod:`rag.api.auth`), over stdio as the local owner;
    ``kb`` names one knowledge base (every readable one without it; one it may not read: not found)."""
    library = library or Library(components)
    server: MCPServer = MCPServer(name="rag-zh", instructions=INSTRUCTIONS, version=__version__)

    @server.tool(
        description=(
            "在知识库中检索与查询最相关的文章段落（稠密向量 + BM25 混合检索），返回段落原文、标题、来源和分数。"
            " Search the knowledge base of Chinese articles; returns the best passages with title, source, date, tags and score."
            " 可选过滤 / optional filters: date_from, date_to (2025-09-01), sources (file paths), tags (any of them)."
        )
    )
    async def search_knowledge_base(
        query: str,
        top_k: int = 5,
        mode: Literal["hybrid", "dense", "bm25"] = "hybrid",
        date_from: DateArg = None,
        date_to: DateArg = None,
        sources: ValuesArg = None,
        tags: ValuesArg = None,
        kb: KbArg = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        with tool_errors():
            query = check_query(query)
            top_k = max(1, min(int(top_k), 50))
            where = SearchFilter.of(date_from, date_to, sources, tags)
            principal = _principal(ctx)
            with components.work.slot():  # the same limit as the API's /v1/search
                retriever = await anyio.to_thread.run_sync(lambda: library.searcher(principal, [kb] if kb else None))
                hits = await anyio.to_thread.run_sync(lambda: retriever.search(query, top_k, mode, where))
            library.record(principal, "search", retriever.kbs, query)
        return {"query": query, "mode": mode, "passages": [hit.to_dict() for hit in hits]}

    @server.tool(
        description=(
            "用知识库回答中文问题：本地大模型只根据检索到的段落作答，每句用 [n] 标注出处；资料中没有答案时明确拒答。"
            " Answer a question from the knowledge base with the local LLM; every claim cites passage [n]; refuses when the articles are silent."
            " 可选过滤 / optional filters as in search_knowledge_base."
        )
    )
    async def ask_knowledge_base(
        question: str,
        date_from: DateArg = None,
        date_to: DateArg = None,
        sources: ValuesArg = None,
        tags: ValuesArg = None,
        kb: KbArg = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        with tool_errors():
            question = check_query(question)
            where = SearchFilter.of(date_from, date_to, sources, tags)
            principal = _principal(ctx)
            kbs = await anyio.to_thread.run_sync(lambda: library.resolve(principal, [kb] if kb else None))
            pipeline = await anyio.to_thread.run_sync(lambda: components.pipeline_for(kbs))
            events = library.audited_answer(
                principal, [found.name for found in kbs], question, pipeline.stream(question, where=where)
            )
            answer = await anyio.to_thread.run_sync(lambda: _answer_of(events))
        return {
            "answer": answer.answer,
            "refused": answer.refused,
            "citations": [
                {"n": c.n, "doc_id": c.doc_id, "title": c.title, "quote": c.quote} for c in answer.citations if c.verified
            ],
            "passages": [{"n": n, **hit.to_dict()} for n, hit in enumerate(answer.passages, start=1)],
            **({"parts": [part.to_dict() for part in answer.parts]} if answer.parts else {}),
        }

    @server.tool(
        description="列出知识库中的全部文章（编号、标题、来源文件、段落数、加入时间）。 List every document in the knowledge base."
    )
    async def list_documents(kb: KbArg = None, ctx: Context | None = None) -> dict[str, Any]:
        with tool_errors():
            principal = _principal(ctx)
            found = await anyio.to_thread.run_sync(lambda: library.documents(principal, [kb] if kb else None))
        return {"documents": [{"kb": name, **asdict(record)} for name, record in found]}

    return server


def _principal(ctx: Context | None) -> Principal:
    """Who a tool call acts as: its HTTP request's principal, the local owner over stdio."""
    try:
        request = ctx.request_context.request if ctx is not None else None
    except ValueError:  # called outside a client session (a direct call_tool): as over stdio
        request = None
    return principal_of(request if isinstance(request, Request) else None)


def _answer_of(events: Iterator[Event]) -> Answer:
    """The final answer of a stream (run to its end, so the audit row is written)."""
    answer = None
    for event in events:
        if event.kind == "done":
            answer = event.answer
    assert answer is not None
    return answer
