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
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from rag import __version__
from rag.api.schemas import MAX_DATE_CHARS, MAX_FILTER_VALUES
from rag.components import Components
from rag.errors import RagError
from rag.index.filters import SearchFilter
from rag.index.locations import redact
from rag.knowledge_base import KnowledgeBase
from rag.qa.retriever import check_query

INSTRUCTIONS = (
    "本服务器提供一个中文文章知识库。先用 search_knowledge_base 查找段落，或用 ask_knowledge_base 直接得到带 [n] 引用的回答。"
    " A knowledge base of Chinese articles: search_knowledge_base finds passages, ask_knowledge_base answers with [n] citations."
)

# Filter arguments, bounded as in the HTTP API (the SDK checks them and lists the bounds in the tool schemas)
DateArg = Annotated[str | None, Field(max_length=MAX_DATE_CHARS)]
ValuesArg = Annotated[list[str] | None, Field(max_length=MAX_FILTER_VALUES)]


@contextmanager
def tool_errors() -> Iterator[None]:
    """The project's errors reach the agent as their message (a busy server, a bad date, no index yet);
    the SDK would show only "Error executing tool" for them. Anything else stays a crash."""
    try:
        yield
    except RagError as exc:
        raise ToolError(redact(str(exc))) from exc


def build_mcp(components: Components, kb: KnowledgeBase | None = None) -> MCPServer:
    """The MCP server over ``components`` (models load on the first tool call that needs them)."""
    kb = kb or KnowledgeBase(components)
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
    ) -> dict[str, Any]:
        with tool_errors():
            query = check_query(query)
            top_k = max(1, min(int(top_k), 50))
            where = SearchFilter.of(date_from, date_to, sources, tags)
            with components.work.slot():  # the same limit as the API's /v1/search
                retriever = await anyio.to_thread.run_sync(components.retriever)
                hits = await anyio.to_thread.run_sync(lambda: retriever.search(query, top_k, mode, where))
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
    ) -> dict[str, Any]:
        with tool_errors():
            question = check_query(question)
            where = SearchFilter.of(date_from, date_to, sources, tags)
            pipeline = await anyio.to_thread.run_sync(components.pipeline)
            answer = await anyio.to_thread.run_sync(lambda: pipeline.ask(question, where=where))
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
    async def list_documents() -> dict[str, Any]:
        with tool_errors():
            records = await anyio.to_thread.run_sync(kb.documents)
        return {"documents": [asdict(record) for record in records]}

    return server
