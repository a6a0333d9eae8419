"""The server's SQLite database: created owner-only, versioned, upgraded on open, one transaction per change."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from rag.errors import RagError
from rag.files import private_file

# One script per schema version: version N is reached by running MIGRATIONS[N - 1]; never edit a
# released script, add the next one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE kbs (
        name TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        location TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password TEXT,
        admin INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE memberships (
        user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        grp TEXT NOT NULL,
        PRIMARY KEY (user, grp)
    );
    CREATE TABLE grants (
        kb TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
        principal TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('reader', 'editor')),
        PRIMARY KEY (kb, kind, principal)
    );
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        label TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        kbs TEXT NOT NULL,
        detail TEXT NOT NULL,
        outcome TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (time);
    CREATE TABLE imports (
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        what TEXT NOT NULL,
        imported_at TEXT NOT NULL,
        PRIMARY KEY (path, sha256)
    );
    """,
    # 2: the web page's saved conversations, per user (before: a file of their own)
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        title TEXT NOT NULL,
        turns TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX conversations_by_user ON conversations (user, updated_at);
    """,
    # 3: thumbs up/down and comments on the web page's answers, with who gave them (before: a JSONL file)
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        user TEXT NOT NULL,
        vote TEXT CHECK (vote IN ('up', 'down')),
        comment TEXT NOT NULL,
        question TEXT NOT NULL,
        standalone_question TEXT NOT NULL,
        answer TEXT NOT NULL,
        refused INTEGER NOT NULL,
        citations TEXT NOT NULL,
        passage_chunk_ids TEXT NOT NULL
    );
    CREATE INDEX feedback_by_time ON feedback (time);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class Database:
    """The SQLite file at ``path``; created 0600 (its folder 0700) and upgraded on first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A connection whose ``with`` block is one transaction: committed, or rolled back on error."""
        self._open()
        with closing(sqlite3.connect(self.path, timeout=10)) as conn:
            conn.execute("PRAGMA foreign_keys = ON")
            with conn:
                yield conn

    def _open(self) -> None:
        with self._lock:
            if self._ready:
                return
            private_file(self.path)  # SQLite gives its -wal and -shm files the mode of this one
            with closing(sqlite3.connect(self.path, timeout=10)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                upgrade(conn, self.path)
            self._ready = True


def upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Run the migrations past the database's version, all in one transaction."""
    conn.execute("BEGIN IMMEDIATE")  # a second process opening the file waits; it then sees the new version
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RagError(
                f"{path} was written by a newer rag-zh (schema {version}, this one knows {SCHEMA_VERSION}); upgrade rag-zh"
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """The statements of a migration script (``executescript`` would commit the transaction)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]
