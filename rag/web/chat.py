"""The 问答 tab: the chat with its filter row and knowledge-base picker, the sources panel and the
full-text view, and feedback on answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr

from rag.accounts.kbs import KbNotFound
from rag.errors import InputError, RagError
from rag.index.filters import SearchFilter
from rag.index.reassemble import reassemble
from rag.models.generators import Message
from rag.qa.retriever import MAX_QUERY_CHARS
from rag.web.base import friendly_error, no_kb_message, question_problem
from rag.web.feedback import FeedbackStore, Vote, feedback_record
from rag.web.render import ChatTurn, chat_messages, document_html, missing_document_html, sources_html
from rag.web.saved import SavedConversations

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = [
    "河南设立的人工智能产业基金规模是多少？",
    "八大算力枢纽节点总算力规模是多少？",
    "截至8月27日，今年脑机接口领域发生了多少起投融资事件？",
    "我国脑机接口企业总量已突破多少家？",
]
CHAT_QUEUE = "llm"  # answering events; the pipeline's queue lets one generate at a time and shows the others their place
CONVERSATION_KEY = "rag-conversation"  # the browser's localStorage key of the open conversation


def history_messages(turns: list[ChatTurn]) -> list[Message]:
    """Earlier answered turns as chat messages, for follow-up questions."""
    history: list[Message] = []
    for turn in turns:
        if turn.answer is not None:
            history.append({"role": "user", "content": turn.question})
            history.append({"role": "assistant", "content": turn.answer.answer})
    return history


class ChatTab(SavedConversations):
    """The handlers and layout of the chat."""

    feedback: FeedbackStore

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

    def clear(self) -> tuple[Any, ...]:
        """Start a new conversation: (chat messages, turns, sources panel, question box, feedback status)."""
        return [], [], sources_html([]), "", ""

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

    # ------------------------------------------------------------ feedback

    def record_feedback(self, turns: list[ChatTurn], index: int, vote: Vote | None, comment: str, user: str) -> tuple[str, str]:
        """Keep feedback on turn ``index`` by ``user``; returns (comment box, status message)."""
        answer = turns[index].answer if 0 <= index < len(turns) else None
        if answer is None:
            return comment, "还没有可以评价的回答。"
        self.feedback.add(feedback_record(answer, vote, comment or "", user))
        return "", "已记录你的反馈，谢谢！"

    def like(self, turns: list[ChatTurn], comment: str, data: gr.LikeData, request: gr.Request | None = None) -> tuple[str, str]:
        """The thumbs on a chat message (message ``2t + 1`` is turn ``t``'s answer)."""
        if data.liked not in (True, False):
            return comment, ""
        index = data.index if isinstance(data.index, int) else data.index[0]
        return self.record_feedback(turns, index // 2, "up" if data.liked else "down", comment, self.principal(request).name)

    def vote_up(self, turns: list[ChatTurn], comment: str, request: gr.Request | None = None) -> tuple[str, str]:
        """👍 on the latest answer."""
        return self.record_feedback(turns, len(turns) - 1, "up", comment, self.principal(request).name)

    def vote_down(self, turns: list[ChatTurn], comment: str, request: gr.Request | None = None) -> tuple[str, str]:
        """👎 on the latest answer."""
        return self.record_feedback(turns, len(turns) - 1, "down", comment, self.principal(request).name)

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

    def _filter_row(self) -> list[Any]:
        """A folded row of search filters: publication dates, tags, source files."""
        with gr.Accordion("筛选资料（可选）", open=False, elem_id="rag-filters"):
            with gr.Row():
                date_from = gr.Textbox(label="发布日期从", placeholder="2025-09-01", min_width=120, elem_id="rag-date-from")
                date_to = gr.Textbox(label="到", placeholder="2025-12-31", min_width=120, elem_id="rag-date-to")
                tags = gr.Dropdown(label="标签", multiselect=True, choices=[], min_width=160, elem_id="rag-tags")
                sources = gr.Dropdown(label="文件", multiselect=True, choices=[], min_width=160, elem_id="rag-source-files")
        return [date_from, date_to, tags, sources]
