"""HTML for the web chat: answers with clickable ``[n]`` citations, the sources panel, the document list.

Everything that came from a model or a document is HTML-escaped before our own markup is added.
Citation links point at ``#rag-src-<turn>-<n>``; ``rag/web/static/citations.js`` turns a click into
"show that turn's passages, highlight passage n, scroll to it".
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rag.index.chunking import Chunk
from rag.index.store import DocumentRecord
from rag.qa.pipeline import Answer
from rag.qa.retriever import SearchHit

NO_ANSWER_TITLE = "资料中没有找到答案"
NO_ANSWER_HINT = "知识库里的文章没有提到这一点。可以换个问法，或到「知识库」页上传相关文章。"
EMPTY_SOURCES = "提问后，这里会显示回答所依据的资料段落。点击回答中的编号（如 [1]）可定位到对应段落。"
REFUSED_SOURCES = "这些是找到的最接近的段落，但它们没有回答这个问题。"
DOCUMENT_HEADERS = ["标题", "文件", "段落数", "加入时间", "文章编号"]

_CITATION = re.compile(r"[\[【]\s*(\d{1,2})\s*(\?|？)?\s*[\]】]")


@dataclass
class ChatTurn:
    """One question and its answer as the chat shows it, while streaming and after."""

    question: str
    text: str = ""
    passages: list[SearchHit] = field(default_factory=list)
    answer: Answer | None = None
    error: str = ""
    queue_position: int = 0  # > 0 while the model answers others first

    @property
    def finished(self) -> bool:
        return self.answer is not None or bool(self.error)


def citation_links(text: str, turn: int) -> str:
    """Escape ``text`` and turn ``[n]`` / ``[n?]`` into links to passage ``n`` of ``turn``."""

    def link(match: re.Match[str]) -> str:
        n, unverified = match.group(1), bool(match.group(2))
        if unverified:
            return (
                f'<a class="rag-cite rag-unverified" href="#rag-src-{turn}-{n}" title="未能在资料 [{n}] 中核实这句话">[{n}?]</a>'
            )
        return f'<a class="rag-cite" href="#rag-src-{turn}-{n}" title="查看资料 [{n}]">[{n}]</a>'

    return _CITATION.sub(link, html.escape(text, quote=False))


def answer_html(turn: ChatTurn, index: int) -> str:
    """The assistant message of turn ``index``: an error, a refusal notice, or the cited answer."""
    if turn.error:
        return f'<div class="rag-notice rag-error">⚠️ {html.escape(turn.error)}</div>'
    if turn.answer is not None and turn.answer.refused:
        return f'<div class="rag-notice rag-refusal"><strong>🔍 {NO_ANSWER_TITLE}</strong><br><span>{NO_ANSWER_HINT}</span></div>'
    if not turn.text and turn.queue_position:
        return f'<span class="rag-pending rag-queued">排队中：前面还有 {turn.queue_position} 个问题，请稍候…</span>'
    if not turn.text:
        step = "正在生成回答…" if turn.passages else "正在查找资料…"
        return f'<span class="rag-pending">{step}</span>'
    body = citation_links(turn.text, index)
    if not turn.finished:
        return body + '<span class="rag-cursor">▍</span>'
    if turn.answer is not None and any(not c.verified for c in turn.answer.citations):
        body += '\n\n<span class="rag-caveat">带问号的编号（如 [1?]）表示这句话未能在对应资料中核实，请查看原文。</span>'
    return body


def chat_messages(turns: Sequence[ChatTurn]) -> list[dict[str, str]]:
    """The Chatbot value: a user and an assistant message per turn."""
    messages: list[dict[str, str]] = []
    for index, turn in enumerate(turns):
        messages.append({"role": "user", "content": html.escape(turn.question, quote=False)})
        messages.append({"role": "assistant", "content": answer_html(turn, index)})
    return messages


def _cited(turn: ChatTurn) -> set[int]:
    return {c.n for c in turn.answer.citations if c.verified} if turn.answer else set()


def _page_html(chunk: Chunk) -> str:
    return f' <span class="rag-page">{chunk.page_label}</span>' if chunk.page else ""


def _passage_html(hit: SearchHit, turn: int, n: int, cited: bool) -> str:
    chunk = hit.chunk
    badge = '<span class="rag-badge">已引用</span>' if cited else ""
    title = html.escape(chunk.title or "（无标题）")
    return (
        f'<article class="rag-passage{" rag-cited" if cited else ""}" id="rag-src-{turn}-{n}" data-n="{n}">'
        f'<header><span class="rag-num">{n}</span><span class="rag-title">{title}</span>{badge}</header>'
        f'<div class="rag-file">📄 {html.escape(Path(chunk.source).name)}{_page_html(chunk)}</div>'
        f'<div class="rag-text">{html.escape(chunk.text)}</div>'
        "</article>"
    )


def sources_html(turns: Sequence[ChatTurn]) -> str:
    """The sources panel: every turn's passages, numbered; only the latest turn is visible at first."""
    sections = []
    for index, turn in enumerate(turns):
        if not turn.passages:
            continue
        cited = _cited(turn)
        passages = "".join(_passage_html(hit, index, n, n in cited) for n, hit in enumerate(turn.passages, start=1))
        hidden = "" if index == len(turns) - 1 else " hidden"
        refused = turn.answer is not None and turn.answer.refused
        note = f'<div class="rag-note">{REFUSED_SOURCES}</div>' if refused else ""
        sections.append(
            f'<section class="rag-turn" data-turn="{index}"{hidden}>'
            f'<div class="rag-question">问：{html.escape(turn.question)}</div>{note}{passages}</section>'
        )
    if not sections:
        return f'<div class="rag-sources"><p class="rag-empty">{EMPTY_SOURCES}</p></div>'
    return f'<div class="rag-sources">{"".join(sections)}</div>'


def format_time(stamp: str) -> str:
    """``2025-11-21T23:31:05+0800`` as ``2025-11-21 23:31`` (unparseable stamps unchanged)."""
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def document_rows(records: Sequence[DocumentRecord]) -> list[list[str | int]]:
    """Rows of the knowledge-base table, newest first (see :data:`DOCUMENT_HEADERS`)."""
    ordered = sorted(records, key=lambda r: (r.added_at, r.doc_id), reverse=True)
    return [[r.title, Path(r.source).name, r.n_chunks, format_time(r.added_at), r.doc_id] for r in ordered]
