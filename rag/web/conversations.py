"""Saved chat conversations, per user, in the server's database (``RAG_DB``, one transaction per write).

A conversation is its title and its turns (question, answer, citations, passages) as JSON, so a
reload or a restart shows it exactly as it was. Every call names the user (``""`` when logins
are off); nobody sees, exports, renames or deletes another user's conversations. The separate
conversations file of older versions is imported once (:func:`import_conversations`).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import sqlite3
import sys
import uuid
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.accounts.db import Database
from rag.errors import InputError
from rag.files import now_iso
from rag.index.chunking import Chunk
from rag.qa.citations import Citation
from rag.qa.pipeline import Answer
from rag.qa.retriever import SearchHit
from rag.web.render import ChatTurn

MAX_TITLE_CHARS = 60
LIST_LIMIT = 100


@dataclass(frozen=True)
class ConversationInfo:
    """One line of a user's conversation list."""

    id: str
    title: str
    updated_at: str


def turn_to_dict(turn: ChatTurn) -> dict[str, Any]:
    """A finished turn as plain JSON data."""
    return {"question": turn.question, "error": turn.error, "answer": asdict(turn.answer) if turn.answer else None}


def turn_from_dict(data: dict[str, Any]) -> ChatTurn:
    """The turn :func:`turn_to_dict` saved."""
    raw = data.get("answer")
    if not raw:
        return ChatTurn(data["question"], error=data.get("error") or "")
    passages = [
        SearchHit(p["rank"], Chunk(**p["chunk"]), p["score"], p["lexical_overlap"], p.get("kb", ""), tuple(p.get("parts") or ()))
        for p in raw["passages"]
    ]
    citations = [Citation(**c) for c in raw["citations"]]
    answer = Answer(**{**raw, "citations": citations, "passages": passages})
    return ChatTurn(data["question"], answer.answer, passages, answer, data.get("error") or "")


def default_title(turns: list[ChatTurn]) -> str:
    """The first question, shortened."""
    first = turns[0].question.strip() if turns else ""
    return first[:MAX_TITLE_CHARS] or "新对话"


class ConversationStore:
    """The conversations of every user in the server's database (a path: a database file of its own)."""

    def __init__(self, db: Database | Path) -> None:
        self.db = db if isinstance(db, Database) else Database(db)

    def _connect(self) -> Any:
        """A connection whose ``with`` block is one transaction (committed, or rolled back on error)."""
        return self.db.transaction()

    def save(self, user: str, conversation_id: str | None, turns: list[ChatTurn]) -> str:
        """Store ``turns`` as conversation ``conversation_id`` (a new one when None or not this user's); its id."""
        body = json.dumps([turn_to_dict(t) for t in turns if t.finished], ensure_ascii=False)
        stamp = now_iso()
        with self._connect() as conn:
            if conversation_id and self._owned(conn, user, conversation_id):
                conn.execute("UPDATE conversations SET turns = ?, updated_at = ? WHERE id = ?", (body, stamp, conversation_id))
                return conversation_id
            new_id = uuid.uuid4().hex
            conn.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)", (new_id, user, default_title(turns), body, stamp, stamp)
            )
            return new_id

    def load(self, user: str, conversation_id: str) -> list[ChatTurn] | None:
        """The turns of one of ``user``'s conversations, or None if there is no such conversation."""
        with self._connect() as conn:
            row = conn.execute("SELECT turns FROM conversations WHERE id = ? AND user = ?", (conversation_id, user)).fetchone()
        return [turn_from_dict(t) for t in json.loads(row[0])] if row else None

    def list(self, user: str) -> list[ConversationInfo]:
        """``user``'s conversations, the most recently changed first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, title, updated_at FROM conversations WHERE user = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?",
                (user, LIST_LIMIT),
            ).fetchall()
        return [ConversationInfo(*row) for row in rows]

    def rename(self, user: str, conversation_id: str, title: str) -> None:
        """Give one of ``user``'s conversations a new title (1-60 characters)."""
        title = " ".join(title.split())
        if not title or len(title) > MAX_TITLE_CHARS:
            raise InputError(f"a conversation title must have 1 to {MAX_TITLE_CHARS} characters")
        with self._connect() as conn:
            self._require(conn, user, conversation_id)
            conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def delete(self, user: str, conversation_id: str) -> None:
        """Remove one of ``user``'s conversations."""
        with self._connect() as conn:
            self._require(conn, user, conversation_id)
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    @staticmethod
    def _owned(conn: sqlite3.Connection, user: str, conversation_id: str) -> bool:
        query = "SELECT 1 FROM conversations WHERE id = ? AND user = ?"
        return conn.execute(query, (conversation_id, user)).fetchone() is not None

    def _require(self, conn: sqlite3.Connection, user: str, conversation_id: str) -> None:
        if not self._owned(conn, user, conversation_id):
            raise InputError("no such conversation")

    def export(self, user: str, conversation_id: str | None = None) -> builtins.list[dict[str, Any]]:
        """``user``'s conversations (one with ``conversation_id``), oldest first, as JSON data with the
        passages each answer was given and which of them it cited; :class:`InputError` for an id not ``user``'s."""
        query = "SELECT id, title, created_at, updated_at, turns FROM conversations WHERE user = ?"
        args: tuple[str, ...] = (user,)
        if conversation_id:
            query, args = query + " AND id = ?", (user, conversation_id)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY created_at, rowid", args).fetchall()
        if conversation_id and not rows:
            raise InputError("no such conversation")
        return [
            {"id": cid, "user": user, "title": title, "created_at": created, "updated_at": updated, "turns": _exported(turns)}
            for cid, title, created, updated, turns in rows
        ]


def _exported(body: str) -> list[dict[str, Any]]:
    """The turns of a saved conversation as an export shows them: question, answer, cited passages."""
    found = []
    for turn in map(turn_from_dict, json.loads(body)):
        answer = turn.answer
        cited = {c.n: c for c in answer.citations if c.verified} if answer else {}
        passages = [
            {
                "n": n,
                "kb": hit.kb,
                "title": hit.chunk.title,
                "source": Path(hit.chunk.source).name,
                "doc_id": hit.chunk.doc_id,
                "text": hit.chunk.text,
                "cited": n in cited,
                "quote": cited[n].quote if n in cited else "",
            }
            for n, hit in enumerate(answer.passages if answer else [], start=1)
        ]
        found.append(
            {
                "question": turn.question,
                "answer": answer.answer if answer else "",
                "refused": bool(answer and answer.refused),
                "error": turn.error,
                "passages": passages,
            }
        )
    return found


def conversations_markdown(conversations: list[dict[str, Any]]) -> str:
    """An export as Markdown: each conversation a heading, each turn its question, answer and cited passages."""
    lines: list[str] = []
    for conversation in conversations:
        lines += [f"# {conversation['title']}", "", f"{conversation['created_at']} – {conversation['updated_at']}", ""]
        for turn in conversation["turns"]:
            lines += [f"## 问：{turn['question']}", "", turn["answer"] or turn["error"] or "（没有回答）", ""]
            cited = [p for p in turn["passages"] if p["cited"]]
            if cited:
                lines.append("来源：")
                lines.append("")
                for passage in cited:
                    where = f"{passage['kb']} · " if passage["kb"] else ""
                    lines.append(
                        f"- [{passage['n']}] 《{passage['title']}》（{where}{passage['source']}）：{passage['quote'] or passage['text']}"
                    )
                lines.append("")
    return "\n".join(lines)


def import_conversations(db: Database, old: Path) -> int:
    """Copy the conversations of an older version's own file into ``db`` once (recorded in ``imports``),
    with a message; the number copied (0 when there is no such file or it was imported already)."""
    old = Path(old).expanduser()
    if not old.is_file() or old.resolve() == db.path.resolve():
        return 0
    fingerprint = hashlib.sha256(old.read_bytes()).hexdigest()
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM imports WHERE path = ?", (str(old.resolve()),)).fetchone():
            return 0
    try:
        with closing(sqlite3.connect(f"{old.resolve().as_uri()}?mode=ro", uri=True)) as reader:
            rows = reader.execute("SELECT id, user, title, turns, created_at, updated_at FROM conversations").fetchall()
    except sqlite3.Error as exc:
        raise InputError(f"cannot read the saved conversations {old}: {exc}") from exc
    with db.transaction() as conn:
        before = conn.total_changes
        conn.executemany("INSERT OR IGNORE INTO conversations VALUES (?, ?, ?, ?, ?, ?)", rows)
        copied = conn.total_changes - before
        conn.execute("INSERT INTO imports VALUES (?, ?, ?, ?)", (str(old.resolve()), fingerprint, "conversations", now_iso()))
    print(
        f"rag: imported {copied} saved conversation(s) from {old} into {db.path}; the old file may go",
        file=sys.stderr,
    )
    return copied
