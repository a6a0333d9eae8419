"""The web chat staff use (Gradio): cited, streamed answers with their evidence and the full text,
saved conversations, a retrieval test page, a knowledge-base page, feedback.

:func:`build_app` builds the page; :func:`rag.server.serve` serves it (``rag serve``). Importing this
module loads no model: :class:`rag.components.Components` loads the embedder and the LLM once, on first
use (``rag serve`` does it before listening), and every browser session shares them. Answers go through one queue
(``concurrency_limit=1``), so several people can ask at once and wait their turn.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

from rag.access import read_secret_lines
from rag.accounts.admin import administration_for
from rag.accounts.kbs import Kb
from rag.components import Components
from rag.config import Settings
from rag.errors import RagError
from rag.index.documents import MAX_FILE_BYTES
from rag.library import Library
from rag.web.accounts_tab import AccountScreens, accounts_tabs
from rag.web.admin import audit_tab_body
from rag.web.chat import ChatTab
from rag.web.conversations import ConversationStore, import_conversations
from rag.web.feedback import FeedbackStore, import_feedback
from rag.web.library_tab import LibraryTab
from rag.web.logins import WebLogins
from rag.web.probe import ProbeTab

STATIC_DIR = Path(__file__).resolve().parent / "static"  # shipped as package data
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


def kb_label(kb: Kb) -> tuple[str, str]:
    """A KB as a dropdown choice: (``标题（name）``, name)."""
    return (f"{kb.title}（{kb.name}）" if kb.title != kb.name else kb.name, kb.name)


class WebApp(ChatTab, ProbeTab, LibraryTab):
    """The handlers of the page (testable without a browser) and the page built around them."""

    def __init__(self, settings: Settings, models: Components | None = None, feedback_file: Path | None = None) -> None:
        self.settings = settings
        self.models = models or Components(settings)
        self.library = Library(self.models)
        self.logins = WebLogins(self.models)
        self.feedback = FeedbackStore(self.models.database())
        import_feedback(self.models.database(), feedback_file or settings.feedback_file)  # an older version's log, once
        self.conversations = ConversationStore(self.models.database())
        self.accounts = AccountScreens(administration_for(settings, self.models.database()))
        import_conversations(self.models.database(), settings.conversations_file)  # an older version's file, once

    def kb_choices(self, request: gr.Request | None = None) -> tuple[Any, ...]:
        """On page load: the chat's picker (KBs the user may read), the 知识库 tab's (KBs it may
        change), and whether the 管理 tab shows (administrators)."""
        principal = self.principal(request)
        readable = self.library.readable(principal)
        writable = self.library.writable(principal)
        choices = [kb_label(kb) for kb in readable]
        picker = gr.update(choices=choices, value=[], visible=len(readable) > 1)
        first = writable[0].name if writable else None
        editing = gr.update(choices=[kb_label(kb) for kb in writable], value=first, visible=bool(writable))
        return picker, picker, editing, gr.update(visible=principal.admin)

    def build(self) -> gr.Blocks:
        """The page: the chat, the retrieval test, the knowledge base and, for administrators, 管理 (users,
        grants, API keys, the audit log); styles and scripts come with :func:`page_options`."""
        with gr.Blocks(title="文章问答助手", analytics_enabled=False) as demo:
            gr.Markdown("# 文章问答助手\n根据知识库中的文章回答问题，并用 [1]、[2] 标出出处。", elem_id="rag-header")
            with gr.Tab("问答", id="chat"):
                chat_kbs, filter_choices = self._chat_tab(demo)
            with gr.Tab("检索测试", id="probe"):
                probe_kbs = self._probe_tab()
            with gr.Tab("知识库", id="kb"):
                kb_choice, kb_view = self._kb_tab(chat_kbs, filter_choices)
            with gr.Tab("管理", id="admin", visible=False) as admin_tab:
                accounts_tabs(demo, self.accounts, self.principal)
                with gr.Tab("审计", id="audit"):
                    audit_tab_body(self.library, self.principal)
            # who the user is decides what each tab offers: filled on every page load
            loaded = demo.load(self.kb_choices, None, [chat_kbs, probe_kbs, kb_choice, admin_tab], concurrency_limit=None)
            loaded.then(self.kb_view, [kb_choice], kb_view, concurrency_limit=None)
            loaded.then(self.filter_choices, [chat_kbs], filter_choices, concurrency_limit=None)
        return demo


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
