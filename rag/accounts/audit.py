"""The audit log: append-only rows of who did what on which knowledge bases, and how it ended.

The question or file name is kept only with ``RAG_AUDIT_QUESTIONS=1`` (privacy); rows older than
``RAG_AUDIT_DAYS`` go when the next row is written (the only rows ever deleted)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rag.accounts.db import Database
from rag.config import Settings

DEFAULT_AUDIT_DAYS = 365


def utc_now(offset_s: float = 0.0) -> str:
    """UTC time as ``2025-08-09T02:00:00Z`` (sorts as text), ``offset_s`` from now."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


@dataclass(frozen=True)
class AuditRow:
    """One action: ``detail`` is the question or file name, or "" when questions are not logged."""

    id: int
    time: str
    actor: str
    action: str
    kbs: tuple[str, ...]
    detail: str
    outcome: str

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "kbs": list(self.kbs)}


class AuditLog:
    """The audit rows in the database."""

    def __init__(self, db: Database, keep_details: bool = False, days: int = DEFAULT_AUDIT_DAYS) -> None:
        self.db = db
        self.keep_details = keep_details
        self.days = days

    def record(
        self, actor: str, action: str, kbs: Sequence[str] = (), detail: str = "", outcome: str = "ok", private: bool = True
    ) -> None:
        """Append one row (and drop rows past the retention); a ``private`` detail (a question, a file
        name) is kept only with ``RAG_AUDIT_QUESTIONS=1``, others (who was granted what) always."""
        kept = self.details("", detail) if private else detail
        row = (utc_now(), actor, action, "," + ",".join(kbs) + ",", kept, outcome)
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO audit (time, actor, action, kbs, detail, outcome) VALUES (?, ?, ?, ?, ?, ?)", row)
            conn.execute("DELETE FROM audit WHERE time < ?", (utc_now(-self.days * 86400),))

    def details(self, public: str, private: str) -> str:
        """``public`` (who was granted what, counts) and, with ``RAG_AUDIT_QUESTIONS=1`` only,
        ``private`` (a question, file names), joined by "; "."""
        return "; ".join(part for part in (public, private if self.keep_details else "") if part)

    def rows(self, user: str | None = None, kb: str | None = None, since: str | None = None) -> list[AuditRow]:
        """Rows, oldest first: of ``user`` (its keys included), touching ``kb``, from ``since`` (a date) on."""
        query, args = "SELECT id, time, actor, action, kbs, detail, outcome FROM audit WHERE 1 = 1", []
        if user:
            query += " AND (actor = ? OR substr(actor, 1, ?) = ?)"
            prefix = f"{user} (key "
            args += [user, len(prefix), prefix]
        if kb:
            query += " AND instr(kbs, ?) > 0"
            args.append(f",{kb},")
        if since:
            query += " AND time >= ?"
            args.append(since)
        with self.db.transaction() as conn:
            found = conn.execute(query + " ORDER BY id", args).fetchall()
        return [
            AuditRow(n, t, actor, action, tuple(k for k in kbs.split(",") if k), detail, outcome)
            for n, t, actor, action, kbs, detail, outcome in found
        ]


def audit_for(settings: Settings, db: Database | None = None) -> AuditLog:
    """The audit log in ``db`` (default: ``settings``' database), kept as ``RAG_AUDIT_*`` say."""
    return AuditLog(db or Database(settings.db_file), settings.audit_questions, settings.audit_days)
