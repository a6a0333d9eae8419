"""What every tab of the page shares: the handlers' common state, who a request acts as, the
choices of the chat's filter row, and the messages staff see when something cannot be done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from rag.accounts.kbs import Kb
from rag.accounts.users import Principal
from rag.components import Components
from rag.config import Settings
from rag.errors import IndexStoreError, ModelError, RagError
from rag.index.locations import redact
from rag.library import Library
from rag.qa.queue import QueueFull
from rag.qa.retriever import MAX_QUERY_CHARS
from rag.web.logins import WebLogins


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


class PageBase:
    """The state every tab's handlers use; :class:`rag.web.app.WebApp` sets it up."""

    settings: Settings
    models: Components
    library: Library
    logins: WebLogins

    def principal(self, request: gr.Request | None) -> Principal:
        """Who ``request`` acts as: the local owner without users, else its logged-in user."""
        return self.logins.principal(request)

    def written(self, kbs: list[Kb]) -> bool:
        """Whether any of ``kbs`` has an index yet."""
        return any(self.models.for_kb(kb).store_exists() for kb in kbs)

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
