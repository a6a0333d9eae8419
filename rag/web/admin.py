"""The page's 审计 tab: the audit log for administrators, filtered by user, knowledge base and date.

The tab is shown to administrators only, and its handler checks again on every click: a user
who is not (or no longer) an administrator gets a notice, never a row."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import gradio as gr

from rag.accounts.audit import AuditRow
from rag.accounts.permissions import Forbidden, Permissions
from rag.accounts.users import Principal
from rag.library import Library

AUDIT_HEADERS = ["时间 (UTC)", "用户", "操作", "知识库", "内容", "结果"]
AUDIT_SHOWN = 500  # the newest rows shown; `rag audit` has them all
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T[\d:]+Z?)?$")


def audit_rows(rows: list[AuditRow]) -> list[list[str]]:
    """Table rows, newest first."""
    return [
        [row.time.replace("T", " ").rstrip("Z"), row.actor, row.action, ", ".join(row.kbs), row.detail, row.outcome]
        for row in reversed(rows[-AUDIT_SHOWN:])
    ]


def audit_view(
    library: Library, principal: Principal, user: str = "", kb: str = "", since: str = ""
) -> tuple[str, list[list[str]]]:
    """(status line, table rows) of the audit log for ``principal``, an administrator; filters as ``rag audit``."""
    try:
        Permissions.require_admin(principal)
    except Forbidden:
        return "只有管理员可以查看审计日志。", []
    since = (since or "").strip()
    if since and not _DATE.match(since):
        return "日期格式应为 2025-09-01。", []
    rows = library.audit.rows(user=(user or "").strip() or None, kb=(kb or "").strip() or None, since=since or None)
    shown = f"，显示最新的 {AUDIT_SHOWN} 条" if len(rows) > AUDIT_SHOWN else ""
    return f"共 {len(rows)} 条记录{shown}。", audit_rows(rows)


def audit_tab_body(library: Library, principal_of: Callable[[gr.Request | None], Principal]) -> None:
    """The filters, the button and the table of the 审计 tab."""

    def show(user: str, kb: str, since: str, request: gr.Request | None = None) -> tuple[str, Any]:
        return audit_view(library, principal_of(request), user, kb, since)

    gr.Markdown(
        "谁在什么时候提问、检索、上传、删除，管理员的用户、授权和密钥操作，以及失败的登录。提问内容只有在设置 `RAG_AUDIT_QUESTIONS=1` 时才记录。"
    )
    with gr.Row():
        user = gr.Textbox(label="用户", placeholder="alice", elem_id="rag-audit-user")
        kb = gr.Textbox(label="知识库", placeholder="default", elem_id="rag-audit-kb")
        since = gr.Textbox(label="起始日期", placeholder="2025-09-01", elem_id="rag-audit-since")
        run = gr.Button("查询", variant="primary", elem_id="rag-audit-run")
    status = gr.Markdown(elem_id="rag-audit-status")
    table = gr.Dataframe(headers=AUDIT_HEADERS, interactive=False, wrap=True, max_height=620, elem_id="rag-audit")
    run.click(show, [user, kb, since], [status, table], concurrency_limit=None)
