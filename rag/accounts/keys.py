"""API keys: each acts as its user; shown once when created, only their SHA-256 kept."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from rag.accounts.db import Database
from rag.accounts.users import Principal, Users, check_name
from rag.errors import InputError
from rag.files import now_iso

KEY_PREFIX = "rag-"
SHOWN_CHARS = 8  # of a key, kept to recognise it in `rag keys list`


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: never the key itself."""

    id: int
    user: str
    label: str
    prefix: str
    created_at: str
    revoked_at: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "active": self.revoked_at is None}


class UnknownKey(InputError):
    """No API key with that id."""

    def __init__(self, key_id: int) -> None:
        super().__init__(f"no API key with id {key_id} (see `rag keys list`)")
        self.key_id = key_id


def key_hash(key: str) -> str:
    """What is stored of a key (32 random bytes need no slow hash)."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()


class Keys:
    """The API keys in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = Users(db)

    def create(self, user: str, label: str | None = None) -> tuple[ApiKey, str]:
        """A new key for ``user``: (its record, the key, to show once)."""
        self.users.require(user)
        label = check_name(label, "key label") if label else f"{user}-key"
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        return self.add(user, label, key), key

    def add(self, user: str, label: str, key: str) -> ApiKey:
        """Keep ``key`` (its hash) as a key of ``user``."""
        stamp = now_iso()
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE sha256 = ?", (key_hash(key),)).fetchone():
                raise InputError("this key is in use already")
            cursor = conn.execute(
                "INSERT INTO api_keys (user, label, sha256, prefix, created_at) VALUES (?, ?, ?, ?, ?)",
                (user, label, key_hash(key), key[:SHOWN_CHARS], stamp),
            )
        return ApiKey(int(cursor.lastrowid or 0), user, label, key[:SHOWN_CHARS], stamp)

    def all(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT id, user, label, prefix, created_at, revoked_at FROM api_keys ORDER BY id").fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: int) -> ApiKey:
        """Stop key ``key_id`` working (from the next request on)."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now_iso(), key_id))
            row = conn.execute(
                "SELECT id, user, label, prefix, created_at, revoked_at FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        if row is None:
            raise UnknownKey(key_id)
        return ApiKey(*row)

    def any(self) -> bool:
        """Whether any key works (then every API request needs one)."""
        with self.db.transaction() as conn:
            return conn.execute("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None

    def principal(self, key: str) -> Principal | None:
        """Who ``key`` acts as; None for an unknown or revoked key."""
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT user, label FROM api_keys WHERE sha256 = ? AND revoked_at IS NULL", (key_hash(key),)
            ).fetchone()
        return self.users.principal(row[0], key=row[1]) if row else None
