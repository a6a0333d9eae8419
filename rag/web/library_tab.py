"""The 知识库 tab: upload, delete and list the documents of a knowledge base the user may change."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from rag.accounts.kbs import DEFAULT_KB, KbNotFound
from rag.accounts.permissions import Forbidden
from rag.accounts.users import Principal
from rag.errors import IndexStoreError, InputError, RagError
from rag.index.documents import MAX_FILE_BYTES, SUPPORTED_SUFFIXES
from rag.index.ingest import IngestReport
from rag.index.locations import redact
from rag.index.sync import last_sync
from rag.knowledge_base import CheckedUpload, KnowledgeBase
from rag.progress import ProgressCallback
from rag.web.base import PageBase, friendly_error
from rag.web.render import DOCUMENT_HEADERS, document_rows, last_sync_line

log = logging.getLogger(__name__)

STAGE_LABELS = {"load": "读取文件", "embed": "计算段落向量", "write": "写入索引"}
INDEX_QUEUE = "index-write"
NO_EDITABLE_KB = "你没有可以修改的知识库（或它已不存在）：上传和删除需要管理员给你编辑权限。"


def base_name(kb: str | None) -> str:
    return kb or DEFAULT_KB


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


class LibraryTab(PageBase):
    """The handlers and layout of the knowledge-base tab."""

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
