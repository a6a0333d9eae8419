"""Thumbs up/down and comments on answers, appended to a JSONL file (one record a line)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Literal

from rag.files import now_iso, private_file
from rag.qa.pipeline import Answer

Vote = Literal["up", "down"]


def feedback_record(answer: Answer, vote: Vote | None, comment: str = "", user: str | None = None) -> dict:
    """One feedback line: the vote and comment with the question, answer, citations and passages shown."""
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


class FeedbackLog:
    """An append-only JSONL file shared by every session of the web app."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict) -> None:
        """Write ``record`` as one line (the file, 0600, and its folder, 0700, are created on first use)."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            with private_file(self.path).open("a", encoding="utf-8") as handle:
                handle.write(line)
