"""Saved chat conversations, per user, in an SQLite file (WAL, one transaction per write).

A conversation is its title and its turns (question, answer, citations, passages) as JSON, so a
reload or a restart shows it exactly as it was. Every call names the user (``""`` when logins
are off); nobody sees, renames or deletes another user's conversations.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.files import now_iso, private_file
from rag.index.chunking import Chunk
from rag.qa.citations import Citation
from rag.qa.pipeline import Answer
from rag.qa.retriever import SearchHit
from rag.web.render import ChatTurn

MAX_TITLE_CHARS = 60
LIST_LIMIT = 100
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    title TEXT NOT NULL,
    turns TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_user ON conversations (user, updated_at);
"""


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
    """The conversations of every user in one SQLite file (created on first use, owner-only)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection whose ``with`` block is one transaction (committed, or rolled back on error)."""
        if not self._ready:
            private_file(self.path)  # SQLite gives its -wal and -shm files the mode of this one
        with closing(sqlite3.connect(self.path, timeout=10)) as conn:
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                self._ready = True
            with conn:
                yield conn

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
