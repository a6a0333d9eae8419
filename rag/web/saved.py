"""The chat's saved conversations: the side list, and opening, renaming, deleting and exporting
the user's own conversations (:class:`rag.web.conversations.ConversationStore` keeps them)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import InputError
from rag.web.base import PageBase
from rag.web.conversations import ConversationStore, conversations_markdown
from rag.web.render import ChatTurn, chat_messages, sources_html


def _user(request: gr.Request | None) -> str | None:
    return getattr(request, "username", None) if request is not None else None


class SavedConversations(PageBase):
    """The handlers of the conversation list."""

    conversations: ConversationStore

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
