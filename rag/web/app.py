"""The web chat staff use (Gradio): cited, streamed answers with their evidence and the full text,
saved conversations, a retrieval test page, a knowledge-base page, feedback.

:func:`build_app` builds the page; :func:`rag.server.serve` serves it (``rag serve``). Importing this
module loads no model: :class:`rag.components.Components` loads the embedder and the LLM once, on first
use (``rag serve`` does it before listening), and every browser session shares them. Answers go through one queue
(``concurrency_limit=1``), so several people can ask at once and wait their turn.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from rag.access import read_secret_lines
from rag.accounts.kbs import DEFAULT_KB, Kb, KbNotFound
from rag.accounts.permissions import Forbidden
from rag.accounts.users import Principal
from rag.components import Components
from rag.config import Settings
from rag.errors import IndexStoreError, InputError, ModelError, RagError
from rag.index.documents import MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from rag.index.filters import SearchFilter
from rag.index.ingest import IngestReport
from rag.index.locations import redact
from rag.index.reassemble import reassemble
from rag.index.sync import last_sync
from rag.knowledge_base import CheckedUpload, KnowledgeBase
from rag.library import Library
from rag.models.generators import Message
from rag.progress import ProgressCallback
from rag.qa.queue import QueueFull
from rag.qa.retriever import MAX_QUERY_CHARS
from rag.web.admin import audit_tab_body
from rag.web.conversations import ConversationStore, conversations_markdown, import_conversations
from rag.web.feedback import FeedbackLog, Vote, feedback_record
from rag.web.logins import WebLogins
from rag.web.render import (
    DOCUMENT_HEADERS,
    ChatTurn,
    chat_messages,
    document_html,
    document_rows,
    last_sync_line,
    missing_document_html,
    rankings_html,
    sources_html,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"  # shipped as package data
EXAMPLE_QUESTIONS = [
    "河南设立的人工智能产业基金规模是多少？",
    "八大算力枢纽节点总算力规模是多少？",
    "截至8月27日，今年脑机接口领域发生了多少起投融资事件？",
    "我国脑机接口企业总量已突破多少家？",
]
STAGE_LABELS = {"load": "读取文件", "embed": "计算段落向量", "write": "写入索引"}
# Latin glyphs from a Latin font first, then the usual Chinese UI fonts of macOS, Windows and Linux
# (system fonts only: the page must not fetch web fonts, as there may be no internet)
SYSTEM_FONTS = [
    "Segoe UI",
    "Helvetica Neue",
    "Arial",
    "Liberation Sans",
    "PingFang SC",
    "Microsoft YaHei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "sans-serif",
]
MONO_FONTS = ["SFMono-Regular", "Consolas", "Noto Sans Mono CJK SC", "monospace"]
CHAT_QUEUE = "llm"  # answering events; the pipeline's queue lets one generate at a time and shows the others their place
INDEX_QUEUE = "index-write"
CONVERSATION_KEY = "rag-conversation"  # the browser's localStorage key of the open conversation
PROBE_K_RANGE = (1, 20)  # the 检索测试 slider
# The page loads nothing from other servers, so an image or frame that a poisoned document gets
# into an answer cannot send anything anywhere: everything comes from this server (default-src, which
# also covers fetch/SSE, fonts, frames and media), images also from data: and blob: URLs (Gradio's
# icons, previews); no plugins, no <base> elsewhere, forms (the login) post here only. Gradio's page
# needs inline scripts and styles, and runs our js (citations.js, the confirm dialogs) through eval.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)


# --------------------------------------------------------------------------- access


def read_logins(auth_file: Path | None, env_value: str | None = None) -> list[tuple[str, str]]:
    """Logins from a file of ``user:password`` lines (blank and ``#`` lines skipped) and ``RAG_AUTH``."""
    entries: list[tuple[str, str]] = []
    if auth_file is not None:
        path = Path(auth_file).expanduser()
        for number, line in read_secret_lines(path, "auth"):
            entries.append(_parse_login(line, f"{path}, line {number}"))
    if env_value and env_value.strip():
        entries.append(_parse_login(env_value.strip(), "RAG_AUTH"))
    return entries


def _parse_login(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user.strip() or not password:
        raise RagError(f"{where}: expected 'user:password'")
    return user.strip(), password


# --------------------------------------------------------------------------- models


# --------------------------------------------------------------------------- messages


def question_problem(question: str) -> str | None:
    """Why a question cannot be asked (in Chinese), or None."""
    if not question:
        return "请先输入问题。"
    if len(question) > MAX_QUERY_CHARS:
        return f"问题太长（{len(question)} 字），请精简到 {MAX_QUERY_CHARS} 字以内。"
    return None


def friendly_error(exc: Exception, index_exists: bool) -> str:
    """A message staff can act on, for an error while answering or changing the knowledge base."""
    if isinstance(exc, IndexStoreError) and not index_exists:
        return "知识库还是空的：请先到「知识库」页上传文章，再来提问。"
    if isinstance(exc, IndexStoreError):
        return f"知识库暂时无法使用：{redact(str(exc))}"
    if isinstance(exc, QueueFull):
        return f"现在提问的人很多，请约 {exc.retry_after_s} 秒后再试。"
    if isinstance(exc, ModelError):
        return f"模型无法使用，请联系管理员：{redact(str(exc))}"
    if isinstance(exc, RagError):
        return redact(str(exc))
    return "出了点问题，没能完成这次操作。请稍后再试；如果一直出错，请联系管理员（详情在服务器日志中）。"


NO_EDITABLE_KB = "你没有可以修改的知识库（或它已不存在）：上传和删除需要管理员给你编辑权限。"


def no_kb_message(names: list[str] | None) -> str:
    """Why a question or a retrieval test has no knowledge base to search (one not readable reads as absent)."""
    if names:
        return "所选的知识库不存在，或你没有权限查看。"
    return "你还没有可以查看的知识库，请联系管理员开通。"


def kb_label(kb: Kb) -> tuple[str, str]:
    """A KB as a dropdown choice: (``标题（name）``, name)."""
    return (f"{kb.title}（{kb.name}）" if kb.title != kb.name else kb.name, kb.name)


def base_name(kb: str | None) -> str:
    return kb or DEFAULT_KB


def history_messages(turns: list[ChatTurn]) -> list[Message]:
    """Earlier answered turns as chat messages, for follow-up questions."""
    history: list[Message] = []
    for turn in turns:
        if turn.answer is not None:
            history.append({"role": "user", "content": turn.question})
            history.append({"role": "assistant", "content": turn.answer.answer})
    return history


def probe_k(k: float) -> int:
    """The 检索测试 top-k the browser sent, held to the slider's range (a client may send any number)."""
    low, high = PROBE_K_RANGE
    return int(max(low, min(high, k)))


def ingest_summary(report: IngestReport) -> list[str]:
    """What an upload did, in a few lines for the knowledge-base page."""
    lines = [f"❌ 未加入：{Path(path).name}（{reason}）" for path, reason in report.files_failed]
    lines += [f"⚠️ {warning}" for warning in report.warnings]
    if report.changed:
        added = len(report.documents_added) + len(report.documents_replaced)
        seconds = f"{report.seconds:.1f}"
        lines.insert(0, f"✅ 已加入 {added} 篇文章（{report.chunks_embedded} 个新段落，用时 {seconds} 秒），现在就可以提问。")
    elif report.files_unchanged:
        lines.insert(0, "ℹ️ 这些文件已经在知识库里，内容没有变化。")
    return lines


def progress_reporter(progress: gr.Progress) -> ProgressCallback:
    """Adapt ingest's ``progress(stage, done, total)`` to a Gradio progress bar."""

    def report(stage: str, done: int, total: int) -> None:
        progress((done, max(total, 1)), desc=STAGE_LABELS.get(stage, stage))

    return report


# --------------------------------------------------------------------------- the app


class WebApp:
    """The handlers of the page (testable without a browser) and the page built around them."""

    def __init__(self, settings: Settings, models: Components | None = None, feedback_file: Path | None = None) -> None:
        self.settings = settings
        self.models = models or Components(settings)
        self.library = Library(self.models)
        self.logins = WebLogins(self.models)
        self.feedback = FeedbackLog(feedback_file or settings.feedback_file)
        self.conversations = ConversationStore(self.models.database())
        import_conversations(self.models.database(), settings.conversations_file)  # an older version's file, once

    # ------------------------------------------------------------ chat

    def ask(
        self,
        question: str,
        turns: list[ChatTurn],
        date_from: str = "",
        date_to: str = "",
        tags: list[str] | None = None,
        sources: list[str] | None = None,
        kbs: list[str] | None = None,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer from the passages the filter row allows, in the knowledge bases picked
        (every one the user may read when none is); yields (chat messages, turns, sources panel, question box).

        Only the readable KBs' stores are searched: the LLM never sees a passage of another."""
        question = (question or "").strip()
        problem = question_problem(question)
        try:
            where = SearchFilter.of(date_from, date_to, sources, tags)
        except InputError as exc:
            problem = problem or f"筛选条件有误：{exc}"
        principal = self.principal(request)
        try:
            chosen = self.library.resolve(principal, kbs or None)
        except KbNotFound:
            chosen = []
            problem = problem or no_kb_message(kbs)
        if problem:
            gr.Warning(problem, title="提示")
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        history = history_messages(turns)
        turn = ChatTurn(question)
        turns = [*turns, turn]
        yield chat_messages(turns), turns, gr.skip(), ""
        names = [kb.name for kb in chosen]
        try:
            stream = self.models.pipeline_for(chosen).stream(question, history, where=where)
            for event in self.library.audited_answer(principal, names, question, stream):
                if event.kind == "passages":
                    turn.passages = list(event.passages)
                    yield chat_messages(turns), turns, sources_html(turns), gr.skip()
                elif event.kind == "queued":
                    if event.position != turn.queue_position:
                        turn.queue_position = event.position
                        yield chat_messages(turns), gr.skip(), gr.skip(), gr.skip()
                elif event.kind == "token" and turn.queue_position:  # the model is writing: no longer queued
                    turn.queue_position = 0
                    yield chat_messages(turns), gr.skip(), gr.skip(), gr.skip()
                elif event.kind == "text":  # verified sentences only: never taken back
                    turn.text += event.text
                    yield chat_messages(turns), gr.skip(), gr.skip(), gr.skip()
                elif event.answer is not None:
                    turn.answer, turn.text = event.answer, event.answer.answer
        except Exception as exc:  # shown to the user; unexpected ones are logged
            if not isinstance(exc, RagError):
                log.exception("answering %r failed", question)
            turn.error = friendly_error(exc, self.written(chosen))
        yield chat_messages(turns), turns, sources_html(turns), gr.skip()

    def principal(self, request: gr.Request | None) -> Principal:
        """Who ``request`` acts as: the local owner without users, else its logged-in user."""
        return self.logins.principal(request)

    def written(self, kbs: list[Kb]) -> bool:
        """Whether any of ``kbs`` has an index yet."""
        return any(self.models.for_kb(kb).store_exists() for kb in kbs)

    def kb_choices(self, request: gr.Request | None = None) -> tuple[Any, ...]:
        """On page load: the chat's picker (KBs the user may read), the 知识库 tab's (KBs it may
        change), and whether the 审计 tab shows (administrators)."""
        principal = self.principal(request)
        readable = self.library.readable(principal)
        writable = self.library.writable(principal)
        choices = [kb_label(kb) for kb in readable]
        picker = gr.update(choices=choices, value=[], visible=len(readable) > 1)
        first = writable[0].name if writable else None
        editing = gr.update(choices=[kb_label(kb) for kb in writable], value=first, visible=bool(writable))
        return picker, picker, editing, gr.update(visible=principal.admin)

    def clear(self) -> tuple[Any, ...]:
        """Start a new conversation: (chat messages, turns, sources panel, question box, feedback status)."""
        return [], [], sources_html([]), "", ""

    # ------------------------------------------------------------ sources and retrieval test

    def open_document(self, wanted_json: str, request: gr.Request | None = None) -> str:
        """The 查看全文 view for a JSON ``{key, kb, doc, chunk, start, end}`` request from a source card;
        only from a KB the user may read (another is answered like a document that is gone)."""
        try:
            wanted = json.loads(wanted_json or "{}")
            key = str(wanted.get("key", ""))
            principal = self.principal(request)
            kb = str(wanted.get("kb") or "")
            kbs = self.library.resolve(principal, [kb]) if kb else self.library.readable(principal)
            chunks = []
            for one in kbs:  # a card saved before KBs names none: the first readable KB that has the document
                if self.models.for_kb(one).store_exists():
                    searcher = self.library.searcher(principal, [one.name])  # stores in memory already, refreshed
                    chunks = searcher.store.document_chunks(str(wanted["doc"]))
                if chunks:
                    break
            start, end = int(wanted.get("start") or 0), int(wanted.get("end") or 0)
        except (ValueError, KeyError, TypeError, AttributeError, RagError):
            return missing_document_html()
        if not chunks:
            return missing_document_html(key)
        return document_html(chunks[0].title, chunks[0].source, reassemble(chunks), str(wanted.get("chunk")), start, end, key)

    def probe(self, query: str, k: float, kbs: list[str] | None = None, request: gr.Request | None = None) -> str:
        """The 检索测试 page: the dense, BM25 and fused top ``k`` (held to the slider's range) for ``query``,
        over the KBs picked (every readable one when none is)."""
        query = (query or "").strip()
        problem = question_problem(query)
        if problem:
            return f'<p class="rag-empty">{problem}</p>'
        principal = self.principal(request)
        chosen: list[Kb] = []
        try:
            chosen = self.library.resolve(principal, kbs or None)
            retriever = self.library.searcher(principal, [kb.name for kb in chosen])
            rankings = retriever.rankings(query, probe_k(k))
            self.library.record(principal, "search", retriever.kbs, query)
            return rankings_html(rankings)
        except KbNotFound:
            return f'<p class="rag-empty">{no_kb_message(kbs)}</p>'
        except Exception as exc:  # shown to the user; unexpected ones are logged
            if not isinstance(exc, RagError):
                log.exception("retrieval test for %r failed", query)
            return f'<p class="rag-empty">{friendly_error(exc, self.written(chosen))}</p>'

    # ------------------------------------------------------------ saved conversations

    def conversation_choices(self, user: str, selected: str | None = None) -> Any:
        """The side list of ``user``'s conversations, ``selected`` marked."""
        choices = [(c.title, c.id) for c in self.conversations.list(user)]
        return gr.update(choices=choices, value=selected if any(cid == selected for _, cid in choices) else None)

    def save_conversation(
        self, turns: list[ChatTurn], conversation_id: str, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """Keep the conversation after an answer; (conversation id, side list)."""
        user = _user(request) or ""
        if not any(t.finished for t in turns):
            return conversation_id, self.conversation_choices(user, conversation_id)
        saved = self.conversations.save(user, conversation_id or None, turns)
        return saved, self.conversation_choices(user, saved)

    def open_conversation(self, conversation_id: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Show a saved conversation (on page load, or picked from the list); (chat, turns, sources, id, list)."""
        user = _user(request) or ""
        if not conversation_id:  # a fresh page: leave the chat alone (a question may be under way already)
            return gr.skip(), gr.skip(), gr.skip(), "", self.conversation_choices(user)
        turns = self.conversations.load(user, conversation_id)
        if turns is None:
            return [], [], sources_html([]), "", self.conversation_choices(user)
        return chat_messages(turns), turns, sources_html(turns), conversation_id, self.conversation_choices(user, conversation_id)

    def forget_conversation(self) -> tuple[Any, ...]:
        """新对话: the next answer starts a new saved conversation; (conversation id, side list selection)."""
        return "", gr.update(value=None)

    def rename_conversation(self, conversation_id: str, title: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Rename the open conversation; (title box, side list)."""
        user = _user(request) or ""
        if not conversation_id:
            gr.Warning("请先在列表中打开一个对话。", title="提示")
            return title, gr.skip()
        try:
            self.conversations.rename(user, conversation_id, title or "")
        except InputError:
            gr.Warning("标题不能为空，也不能超过 60 个字。", title="提示")
            return title, gr.skip()
        return "", self.conversation_choices(user, conversation_id)

    def delete_conversation(self, conversation_id: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Delete the open conversation and show an empty chat; (chat, turns, sources, id, list)."""
        user = _user(request) or ""
        if conversation_id:
            try:
                self.conversations.delete(user, conversation_id)
            except InputError:
                pass  # already gone (deleted in another tab)
        return [], [], sources_html([]), "", self.conversation_choices(user)

    def export_conversations(self, conversation_id: str, fmt: str, request: gr.Request | None = None) -> Any:
        """A file to download: the open conversation (all of the user's when none is open) as Markdown
        or JSON, with the passages each answer cited; only the user's own."""
        user = _user(request) or ""
        try:
            found = self.conversations.export(user, conversation_id or None)
        except InputError:
            found = []
        if not found:
            gr.Warning("还没有可以导出的对话。", title="提示")
            return None
        folder = Path(tempfile.mkdtemp(prefix="rag-export-"))
        if fmt == "json":
            path = folder / "conversations.json"
            path.write_text(json.dumps(found, ensure_ascii=False, indent=2), encoding="utf-8")
        else:
            path = folder / "conversations.md"
            path.write_text(conversations_markdown(found), encoding="utf-8")
        return str(path)

    def export_markdown(self, conversation_id: str, request: gr.Request | None = None) -> Any:
        """导出 Markdown."""
        return self.export_conversations(conversation_id, "md", request)

    def export_json(self, conversation_id: str, request: gr.Request | None = None) -> Any:
        """导出 JSON."""
        return self.export_conversations(conversation_id, "json", request)

    # ------------------------------------------------------------ feedback

    def record_feedback(
        self, turns: list[ChatTurn], index: int, vote: Vote | None, comment: str, user: str | None = None
    ) -> tuple[str, str]:
        """Append feedback on turn ``index``; returns (comment box, status message)."""
        answer = turns[index].answer if 0 <= index < len(turns) else None
        if answer is None:
            return comment, "还没有可以评价的回答。"
        self.feedback.append(feedback_record(answer, vote, comment or "", user))
        return "", "已记录你的反馈，谢谢！"

    def like(self, turns: list[ChatTurn], comment: str, data: gr.LikeData, request: gr.Request | None = None) -> tuple[str, str]:
        """The thumbs on a chat message (message ``2t + 1`` is turn ``t``'s answer)."""
        if data.liked not in (True, False):
            return comment, ""
        index = data.index if isinstance(data.index, int) else data.index[0]
        return self.record_feedback(turns, index // 2, "up" if data.liked else "down", comment, _user(request))

    def vote_up(self, turns: list[ChatTurn], comment: str, request: gr.Request | None = None) -> tuple[str, str]:
        """👍 on the latest answer."""
        return self.record_feedback(turns, len(turns) - 1, "up", comment, _user(request))

    def vote_down(self, turns: list[ChatTurn], comment: str, request: gr.Request | None = None) -> tuple[str, str]:
        """👎 on the latest answer."""
        return self.record_feedback(turns, len(turns) - 1, "down", comment, _user(request))

    # ------------------------------------------------------------ knowledge base

    def editing(self, kb: str | None, request: gr.Request | None) -> tuple[Principal, KnowledgeBase]:
        """(principal, documents of ``kb``) when the user may change ``kb``: :class:`KbNotFound` when it may
        not read it (or it does not exist), :class:`Forbidden` when it may only read it."""
        principal = self.principal(request)
        return principal, self.library.editable(principal, kb or DEFAULT_KB)

    def kb_view(self, kb: str | None = DEFAULT_KB, request: gr.Request | None = None) -> tuple[str, list[list[str | int]], Any]:
        """(summary, document table rows, delete-choice dropdown) for knowledge base ``kb``, if the user may change it."""
        empty = gr.update(choices=[], value=None)
        try:
            _, base = self.editing(kb, request)
        except (KbNotFound, Forbidden):
            return NO_EDITABLE_KB, [], empty
        if not base.components.store_exists():
            return "知识库还是空的：上传文章后就可以提问了。", [], empty
        try:
            records = base.documents()
        except IndexStoreError as exc:
            return f"知识库无法读取：{redact(str(exc))}", [], empty
        chunks = sum(r.n_chunks for r in records)
        choices = [(f"{r.title}（{r.doc_id}）", r.doc_id) for r in records]
        summary = f"知识库中共有 **{len(records)}** 篇文章、**{chunks}** 个段落。"
        if synced := last_sync_line(last_sync(base.settings.index)):
            summary += f"\n\n{synced}"
        return summary, document_rows(records), gr.update(choices=choices, value=None)

    def filter_choices(self, kbs: list[str] | None = None, request: gr.Request | None = None) -> tuple[Any, Any]:
        """The choices of the filter row: every tag, and every source file (by name), of the KBs picked
        (every readable one when none is)."""
        try:
            records = [record for _, record in self.library.documents(self.principal(request), kbs or None)]
        except RagError:
            records = []  # the knowledge-base tab says what is wrong
        tags = sorted({tag for record in records for tag in record.tags})
        files = sorted({(Path(record.source).name, record.source) for record in records})
        return gr.update(choices=tags), gr.update(choices=files)

    def upload(
        self,
        files: list[str] | None,
        kb: str | None = DEFAULT_KB,
        request: gr.Request | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio is asked for a progress bar
    ) -> tuple[Any, ...]:
        """Check, keep and index uploaded files in ``kb`` (an editor's); returns (status, summary, table, dropdown, file box)."""
        try:
            principal, base = self.editing(kb, request)
        except (KbNotFound, Forbidden):
            return (NO_EDITABLE_KB, *self.kb_view(kb, request), None)
        messages: list[str] = []
        accepted: list[CheckedUpload] = []
        for temp in files or []:
            path = Path(temp)
            try:
                accepted.append(base.check(path, path.name))
            except InputError as exc:
                messages.append(f"❌ 未加入：{exc}")
        if not files:
            messages.append("请先选择要上传的文件。")
        elif accepted:
            messages.extend(self._ingest(base, accepted, progress))
        if files:
            failed = any(message.startswith("❌") for message in messages)
            names = ", ".join(Path(temp).name for temp in files)
            self.library.record(principal, "upload", [base_name(kb)], names, "error" if failed else "ok")
        return ("\n\n".join(messages), *self.kb_view(kb, request), None)

    def _ingest(self, base: KnowledgeBase, accepted: list[CheckedUpload], progress: gr.Progress) -> list[str]:
        try:
            report = base.add(accepted, progress=progress_reporter(progress))
        except Exception as exc:  # shown to the user; unexpected ones are logged
            if not isinstance(exc, RagError):
                log.exception("ingesting %s failed", [upload.name for upload in accepted])
            return [f"❌ {friendly_error(exc, base.components.store_exists())}"]
        return ingest_summary(report)

    def delete(self, doc_id: str | None, kb: str | None = DEFAULT_KB, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Remove one document of ``kb`` (an editor's; its uploaded file once nothing uses it); (status, summary, table, dropdown)."""
        if not doc_id:
            return ("请先在列表中选择要删除的文章。", *self.kb_view(kb, request))
        try:
            principal, base = self.editing(kb, request)
        except (KbNotFound, Forbidden):
            return (NO_EDITABLE_KB, *self.kb_view(kb, request))
        try:
            title = base.delete(doc_id).title
            status = f"🗑️ 已删除《{title}》。"
            self.library.record(principal, "delete", [base_name(kb)], title)
        except Exception as exc:  # shown to the user; unexpected ones are logged
            if not isinstance(exc, RagError):
                log.exception("deleting %s failed", doc_id)
            status = f"❌ {friendly_error(exc, base.components.store_exists())}"
            self.library.record(principal, "delete", [base_name(kb)], doc_id, "error")
        return (status, *self.kb_view(kb, request))

    # ------------------------------------------------------------ layout

    def build(self) -> gr.Blocks:
        """The page: a chat tab and a knowledge-base tab (styles and scripts come with :func:`page_options`)."""
        with gr.Blocks(title="文章问答助手", analytics_enabled=False) as demo:
            gr.Markdown("# 文章问答助手\n根据知识库中的文章回答问题，并用 [1]、[2] 标出出处。", elem_id="rag-header")
            with gr.Tab("问答", id="chat"):
                chat_kbs, filter_choices = self._chat_tab(demo)
            with gr.Tab("检索测试", id="probe"):
                probe_kbs = self._probe_tab()
            with gr.Tab("知识库", id="kb"):
                kb_choice, kb_view = self._kb_tab(chat_kbs, filter_choices)
            with gr.Tab("审计", id="audit", visible=False) as audit_tab:
                audit_tab_body(self.library, self.principal)
            # who the user is decides what each tab offers: filled on every page load
            loaded = demo.load(self.kb_choices, None, [chat_kbs, probe_kbs, kb_choice, audit_tab], concurrency_limit=None)
            loaded.then(self.kb_view, [kb_choice], kb_view, concurrency_limit=None)
            loaded.then(self.filter_choices, [chat_kbs], filter_choices, concurrency_limit=None)
        return demo

    def _chat_tab(self, demo: gr.Blocks) -> tuple[Any, list[Any]]:
        """The chat; returns its KB picker and the filter dropdowns whose choices follow the knowledge bases."""
        turns = gr.State([])
        # the id is no secret (the server checks the owner), but Gradio encrypts browser state and its
        # default key changes with every page load, which would forget the conversation on reload
        conversation_id = gr.BrowserState("", storage_key=CONVERSATION_KEY, secret=CONVERSATION_KEY)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=200, elem_id="rag-history"):
                history = gr.Radio(label="历史对话", choices=[], elem_id="rag-conversations")
                title = gr.Textbox(show_label=False, placeholder="新标题", max_lines=1, elem_id="rag-conv-title")
                with gr.Row():
                    rename = gr.Button("重命名", size="sm", elem_id="rag-conv-rename")
                    remove = gr.Button("删除", size="sm", variant="stop", elem_id="rag-conv-delete")
                with gr.Row():
                    export_md = gr.Button("导出 Markdown", size="sm", elem_id="rag-conv-export-md")
                    export_json = gr.Button("导出 JSON", size="sm", elem_id="rag-conv-export-json")
                exported = gr.File(label="导出的对话", interactive=False, elem_id="rag-conv-export")
            with gr.Column(scale=3, min_width=360):
                chatbot = gr.Chatbot(
                    label="对话",
                    height=560,
                    elem_id="rag-chat",
                    feedback_options=("Like", "Dislike"),
                    buttons=["copy"],
                    latex_delimiters=[],
                    placeholder="你好！请在下方输入问题。回答会标出所依据的资料，点击编号即可查看原文。",
                )
                with gr.Row():
                    question = gr.Textbox(
                        show_label=False,
                        placeholder="输入问题，按回车发送",
                        max_length=MAX_QUERY_CHARS,
                        scale=5,
                        elem_id="rag-question",
                        autofocus=True,
                    )
                    send = gr.Button("发送", variant="primary", scale=1, min_width=80, elem_id="rag-send")
                    new_chat = gr.Button("新对话", scale=1, min_width=80, elem_id="rag-new")
                kb_picker = gr.Dropdown(
                    label="知识库",
                    info="可以选几个；不选则在你能查看的全部知识库中查找",
                    multiselect=True,
                    choices=[],
                    visible=False,
                    elem_id="rag-kb-picker",
                )
                filters = self._filter_row()
                gr.Examples(EXAMPLE_QUESTIONS, inputs=[question], label="示例问题（点击填入）")
                with gr.Row(elem_id="rag-feedback"):
                    comment = gr.Textbox(
                        show_label=False,
                        placeholder="对最近一条回答有意见？可以写在这里（可选），再点右边的按钮",
                        scale=4,
                        elem_id="rag-comment",
                    )
                    up = gr.Button("👍 有帮助", scale=1, min_width=100, elem_id="rag-up")
                    down = gr.Button("👎 有问题", scale=1, min_width=100, elem_id="rag-down")
                status = gr.Markdown(elem_id="rag-feedback-status")
            with gr.Column(scale=2, min_width=300):
                gr.Markdown("### 参考资料")
                sources = gr.HTML(sources_html([]), elem_id="rag-sources")
                document = gr.HTML(elem_id="rag-doc-view")
                doc_request = gr.Textbox(visible="hidden", elem_id="rag-doc-request")
                doc_open = gr.Button(visible="hidden", elem_id="rag-doc-open")
        doc_open.click(self.open_document, [doc_request], [document], concurrency_limit=None, show_progress="hidden")
        answer_outputs = [chatbot, turns, sources, question]
        answering = [
            trigger(
                self.ask,
                [question, turns, *filters, kb_picker],
                answer_outputs,
                concurrency_limit=self.settings.queue_capacity,
                concurrency_id=CHAT_QUEUE,
                show_progress="minimal",
            )
            for trigger in (question.submit, send.click)
        ]
        for asked in answering:
            asked.then(self.save_conversation, [turns, conversation_id], [conversation_id, history], concurrency_limit=None)
        shown = [chatbot, turns, sources, conversation_id, history]
        demo.load(self.open_conversation, [conversation_id], shown, concurrency_limit=None)
        history.input(self.open_conversation, [history], shown, concurrency_limit=None)
        rename.click(self.rename_conversation, [conversation_id, title], [title, history], concurrency_limit=None)
        export_md.click(self.export_markdown, [conversation_id], [exported], concurrency_limit=None)
        export_json.click(self.export_json, [conversation_id], [exported], concurrency_limit=None)
        remove.click(
            self.delete_conversation,
            [conversation_id],
            shown,
            js="(id) => (id && confirm('确定要删除这个对话吗？')) ? id : ''",
            concurrency_limit=None,
        )
        feedback_io: dict[str, Any] = {"inputs": [turns, comment], "outputs": [comment, status], "concurrency_limit": None}
        chatbot.like(self.like, **feedback_io)
        up.click(self.vote_up, **feedback_io)
        down.click(self.vote_down, **feedback_io)
        reset: dict[str, Any] = {
            "fn": self.clear,
            "outputs": [chatbot, turns, sources, question, status],
            "cancels": answering,
            "concurrency_limit": None,
        }
        for event in (new_chat.click, chatbot.clear):
            event(**reset).then(self.forget_conversation, None, [conversation_id, history], concurrency_limit=None)
        kb_picker.input(self.filter_choices, [kb_picker], filters[2:], concurrency_limit=None)
        return kb_picker, filters[2:]  # tags and source files

    def _probe_tab(self) -> Any:
        gr.Markdown(
            "输入问题，查看向量检索、关键词检索（BM25）和融合排序各自找到的段落、名次和分数，用来分析某个问题为什么没答好。"
        )
        with gr.Row():
            query = gr.Textbox(
                show_label=False, placeholder="输入要测试的问题", scale=5, max_length=MAX_QUERY_CHARS, elem_id="rag-probe-query"
            )
            top_k = gr.Slider(*PROBE_K_RANGE, value=5, step=1, label="每列显示条数（top-k）", scale=2, elem_id="rag-probe-k")
            run = gr.Button("检索", variant="primary", scale=1, min_width=80, elem_id="rag-probe-run")
        kb_picker = gr.Dropdown(
            label="知识库", multiselect=True, choices=[], visible=False, elem_id="rag-probe-kbs", info="不选则查全部"
        )
        results = gr.HTML(elem_id="rag-probe-results")
        for trigger in (query.submit, run.click):
            trigger(self.probe, [query, top_k, kb_picker], [results], concurrency_limit=None)
        return kb_picker

    def _filter_row(self) -> list[Any]:
        """A folded row of search filters: publication dates, tags, source files."""
        with gr.Accordion("筛选资料（可选）", open=False, elem_id="rag-filters"):
            with gr.Row():
                date_from = gr.Textbox(label="发布日期从", placeholder="2025-09-01", min_width=120, elem_id="rag-date-from")
                date_to = gr.Textbox(label="到", placeholder="2025-12-31", min_width=120, elem_id="rag-date-to")
                tags = gr.Dropdown(label="标签", multiselect=True, choices=[], min_width=160, elem_id="rag-tags")
                sources = gr.Dropdown(label="文件", multiselect=True, choices=[], min_width=160, elem_id="rag-source-files")
        return [date_from, date_to, tags, sources]

    def _kb_tab(self, chat_kbs: Any, filter_choices: list[Any]) -> tuple[Any, list[Any]]:
        """Upload, delete and list in a KB the user may change; a change also refreshes the choices in
        ``filter_choices``; returns the KB dropdown and the list's outputs."""
        types = " ".join(SUPPORTED_SUFFIXES)
        gr.Markdown(
            f"上传文章（{types}，单个文件不超过 {MAX_FILE_BYTES // 1024 // 1024} MB）。"
            "上传完成后，「问答」页立即可以用到新文章，不需要重启。同名文件再次上传会替换旧版本。"
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                kb_choice = gr.Dropdown(label="知识库", choices=[], elem_id="rag-kb-choice")
                files = gr.File(
                    label="选择文件",
                    file_count="multiple",
                    file_types=list(SUPPORTED_SUFFIXES),
                    type="filepath",
                    elem_id="rag-files",
                )
                upload = gr.Button("上传并加入知识库", variant="primary", elem_id="rag-upload")
                kb_status = gr.Markdown(elem_id="rag-kb-status")
                gr.Markdown("#### 删除文章")
                choice = gr.Dropdown(label="选择要删除的文章", choices=[], elem_id="rag-delete-choice")
                delete = gr.Button("删除所选文章", variant="stop", elem_id="rag-delete")
            with gr.Column(scale=2, min_width=400):
                summary = gr.Markdown(elem_id="rag-kb-summary")
                table = gr.Dataframe(
                    headers=DOCUMENT_HEADERS,
                    interactive=False,
                    wrap=True,
                    column_widths=["36%", "22%", "9%", "15%", "18%"],
                    buttons=["fullscreen"],
                    max_height=620,
                    elem_id="rag-docs",
                )
                refresh = gr.Button("刷新列表", size="sm")
        view = [summary, table, choice]
        changes = [
            upload.click(
                self.upload, [files, kb_choice], [kb_status, *view, files], concurrency_limit=1, concurrency_id=INDEX_QUEUE
            ),
            delete.click(
                self.delete,
                [choice, kb_choice],
                [kb_status, *view],
                js="(doc, kb) => [(doc && confirm('确定要从知识库删除这篇文章吗？')) ? doc : null, kb]",
                concurrency_limit=1,
                concurrency_id=INDEX_QUEUE,
            ),
            refresh.click(self.kb_view, [kb_choice], view, concurrency_limit=None),
        ]
        for change in changes:
            change.then(self.filter_choices, [chat_kbs], filter_choices, concurrency_limit=None)
        kb_choice.input(self.kb_view, [kb_choice], view, concurrency_limit=None)
        return kb_choice, view


def _user(request: gr.Request | None) -> str | None:
    return getattr(request, "username", None) if request is not None else None


def build_app(settings: Settings, models: Components | None = None, feedback_file: Path | None = None) -> gr.Blocks:
    """The Gradio page for ``settings`` (models are loaded on first use, not here)."""
    return WebApp(settings, models, feedback_file).build()


class ContentSecurityPolicy:
    """ASGI middleware: every HTTP response carries :data:`CONTENT_SECURITY_POLICY`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: AsgiMessage) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_policy)


def page_options(logins: list[tuple[str, str]] | Callable[[str, str], bool] | None) -> dict[str, Any]:
    """How the page is served, by Gradio's own server (:func:`launch_app`) or mounted in another app
    (:mod:`rag.server`): the project's styles, scripts, upload limit and optional login (a check of
    name and password, e.g. :meth:`WebLogins.check`); the content policy is :class:`ContentSecurityPolicy`."""
    return {
        "auth": logins or None,
        "auth_message": "请输入管理员分配的用户名和密码。",
        "theme": gr.themes.Soft(primary_hue="blue", font=SYSTEM_FONTS, font_mono=MONO_FONTS),
        "css_paths": [STATIC_DIR / "style.css"],
        "js": (STATIC_DIR / "citations.js").read_text(encoding="utf-8"),
        "max_file_size": MAX_FILE_BYTES,
        "footer_links": [],
        "run_history": False,
        "enable_monitoring": False,
        "mcp_server": False,
        "show_error": False,
    }


def launch_app(
    demo: gr.Blocks,
    host: str,
    port: int,
    logins: list[tuple[str, str]] | Callable[[str, str], bool] | None,
    block: bool = True,
) -> None:
    """Serve ``demo`` on Gradio's own server with :func:`page_options` and the content policy."""
    try:
        demo.queue(default_concurrency_limit=1).launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=not block,
            app_kwargs={"middleware": [Middleware(ContentSecurityPolicy)]},
            **page_options(logins),
        )
    except OSError as exc:
        raise RagError(f"cannot listen on {host}:{port}: {exc}") from exc
