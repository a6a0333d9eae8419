"""Thumbs up/down and comments on answers, one row each in the server's database (``RAG_DB``).

A row keeps who voted, the vote and comment, the question (and the standalone one a follow-up
was rewritten into), the answer, its citations and the chunk ids of the passages shown. The
JSONL feedback log of older versions is imported once (:func:`import_feedback`)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any, Literal

from rag.accounts.db import Database
from rag.files import now_iso
from rag.qa.pipeline import Answer

Vote = Literal["up", "down"]
_COLUMNS = (
    "time",
    "user",
    "vote",
    "comment",
    "question",
    "standalone_question",
    "answer",
    "refused",
    "citations",
    "passage_chunk_ids",
)


def feedback_record(answer: Answer, vote: Vote | None, comment: str = "", user: str | None = None) -> dict:
    """One piece of feedback: the vote and comment with the question, answer, citations and passages shown."""
    return {
        "time": now_iso(),
        "vote": vote,
        "comment": comment.strip(),
        "user": user,
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.answer,
        "refused": answer.refused,
        "citations": [{"n": c.n, "chunk_id": c.chunk_id, "doc_id": c.doc_id, "verified": c.verified} for c in answer.citations],
        "passage_chunk_ids": [hit.chunk.chunk_id for hit in answer.passages],
    }


def _row(record: dict[str, Any]) -> tuple[Any, ...]:
    """The table row of a record (an old log's line may lack fields or hold odd values)."""
    vote = record.get("vote")
    return (
        str(record.get("time") or ""),
        str(record.get("user") or ""),
        vote if vote in ("up", "down") else None,
        str(record.get("comment") or ""),
        str(record.get("question") or ""),
        str(record.get("standalone_question") or ""),
        str(record.get("answer") or ""),
        int(bool(record.get("refused"))),
        json.dumps(record.get("citations") or [], ensure_ascii=False),
        json.dumps(record.get("passage_chunk_ids") or [], ensure_ascii=False),
    )


def _insert(conn: sqlite3.Connection, records: list[dict[str, Any]]) -> None:
    marks = ", ".join("?" * len(_COLUMNS))
    conn.executemany(f"INSERT INTO feedback ({', '.join(_COLUMNS)}) VALUES ({marks})", [_row(r) for r in records])


class FeedbackStore:
    """The feedback rows of every user, shared by every session of the web page."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: dict[str, Any]) -> None:
        """Keep one :func:`feedback_record`."""
        with self.db.transaction() as conn:
            _insert(conn, [record])

    def records(self, since: str = "", vote: Vote | None = None) -> list[dict[str, Any]]:
        """The records from ``since`` (an ISO date or time; "" for all) on, of ``vote`` only if given, oldest first."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM feedback WHERE time >= ?" + (" AND vote = ?" if vote else "")
        with self.db.transaction() as conn:
            rows = conn.execute(query + " ORDER BY id", (since, vote) if vote else (since,)).fetchall()
        found = []
        for row in rows:
            record = dict(zip(_COLUMNS, row))
            found.append(
                {
                    **record,
                    "user": record["user"] or None,
                    "refused": bool(record["refused"]),
                    "citations": json.loads(record["citations"]),
                    "passage_chunk_ids": json.loads(record["passage_chunk_ids"]),
                }
            )
        return found


def import_feedback(db: Database, old: Path) -> int:
    """Copy the records of an older version's JSONL feedback log into ``db`` once (recorded in
    ``imports``), with a message; the number copied (0 when there is no such file or it was imported
    already). A line that does not parse (cut off by a crash) is skipped."""
    old = Path(old).expanduser()
    if not old.is_file():
        return 0
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM imports WHERE path = ?", (str(old.resolve()),)).fetchone():
            return 0
    content = old.read_bytes()
    records = []
    for line in content.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    with db.transaction() as conn:  # the rows and the import mark together: a crash imports nothing twice
        _insert(conn, records)
        fingerprint = hashlib.sha256(content).hexdigest()
        conn.execute("INSERT INTO imports VALUES (?, ?, ?, ?)", (str(old.resolve()), fingerprint, "feedback", now_iso()))
    print(f"rag: imported {len(records)} feedback record(s) from {old} into {db.path}; the old file may go", file=sys.stderr)
    return len(records)
