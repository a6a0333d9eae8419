"""Users, their groups and passwords (scrypt, salted), and the grants that give them a role on a knowledge base."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rag.accounts.db import Database
from rag.errors import InputError
from rag.files import now_iso

Role = Literal["reader", "editor"]
ROLES: tuple[Role, ...] = ("reader", "editor")
GrantKind = Literal["user", "group"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# scrypt at N=2**14, r=8: 16 MB and about 50 ms a check on the project's 2-core machine
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD_CHARS = 8


@dataclass(frozen=True)
class User:
    """A user as listed: name, administrator or not, groups, whether a password is set."""

    name: str
    admin: bool
    groups: tuple[str, ...] = ()
    has_password: bool = False
    created_at: str = ""


@dataclass(frozen=True)
class Grant:
    """``role`` on knowledge base ``kb`` for a user or a group."""

    kb: str
    kind: GrantKind
    principal: str
    role: Role


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user (``key`` names the API key it came with) and the user's groups.

    :data:`LOCAL_OWNER` is the single-user mode and the CLI: an administrator."""

    name: str
    admin: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)
    key: str = ""

    @property
    def actor(self) -> str:
        """How the audit log names it: ``alice`` or ``alice (key LABEL)``."""
        return f"{self.name} (key {self.key})" if self.key else self.name


LOCAL_OWNER = Principal("local", admin=True)


class BadName(InputError):
    """A name that cannot name a user, a group or a key label."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(f"{name!r} cannot name a {what}: use 1-64 letters, digits, '.', '_', '@' and '-'")
        self.name, self.what = name, what


class UnknownUser(InputError):
    """No user of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no user named {name!r} (see `rag users list`)")
        self.name = name


class UserExists(InputError):
    """A user of that name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a user named {name!r} exists already")
        self.name = name


class WeakPassword(InputError):
    """A password shorter than :data:`MIN_PASSWORD_CHARS`."""

    def __init__(self) -> None:
        super().__init__(f"a password needs at least {MIN_PASSWORD_CHARS} characters")


def check_name(name: str, what: str = "user") -> str:
    """``name`` if it can name a user or group: 1-64 letters, digits, ``. _ @ -``."""
    if not _NAME.match(name or ""):
        raise BadName(name, what)
    return name


def check_role(role: str) -> Role:
    """``role`` checked: ``reader`` or ``editor``."""
    for known in ROLES:
        if role == known:
            return known
    raise InputError(f"unknown role {role!r}; choose reader or editor")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + f"{salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str | None) -> bool:
    """Whether ``password`` is the one :func:`hash_password` stored (never, without one)."""
    if not stored:
        return False
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    found = hashlib.scrypt(
        password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), maxmem=64 * 1024 * 1024
    )
    return hmac.compare_digest(found.hex(), digest)


class Users:
    """The users, groups and grants in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def any(self) -> bool:
        """Whether any user exists (none: single-user mode)."""
        with self.db.transaction() as conn:
            return conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def add(self, name: str, groups: Iterable[str] = (), admin: bool = False, password: str | None = None) -> User:
        """A new user in ``groups``; without a password it can use API keys but not log in."""
        check_name(name)
        groups = tuple(sorted({check_name(group, "group") for group in groups}))
        if password is not None and len(password) < MIN_PASSWORD_CHARS:
            raise WeakPassword()
        stored = hash_password(password) if password is not None else None
        stamp = now_iso()
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserExists(name)
            conn.execute("INSERT INTO users VALUES (?, ?, ?, ?)", (name, stored, int(admin), stamp))
            conn.executemany("INSERT INTO memberships VALUES (?, ?)", [(name, group) for group in groups])
        return User(name, admin, groups, stored is not None, stamp)

    def all(self) -> list[User]:
        """Every user, by name."""
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT name, admin, password IS NOT NULL, created_at FROM users ORDER BY name").fetchall()
            members = conn.execute("SELECT user, grp FROM memberships ORDER BY grp").fetchall()
        groups: dict[str, list[str]] = {}
        for user, group in members:
            groups.setdefault(user, []).append(group)
        return [User(name, bool(admin), tuple(groups.get(name, ())), bool(has), created) for name, admin, has, created in rows]

    def principal(self, name: str, key: str = "", extra_groups: Iterable[str] = ()) -> Principal | None:
        """The principal of user ``name`` (its groups, plus ``extra_groups`` from LDAP); None if there is no such user."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT admin FROM users WHERE name = ?", (name,)).fetchone()
            groups = {group for (group,) in conn.execute("SELECT grp FROM memberships WHERE user = ?", (name,))}
        if row is None:
            return None
        return Principal(name, bool(row[0]), frozenset(groups | set(extra_groups)), key)

    def check_password(self, name: str, password: str) -> bool:
        """Whether ``name`` may log in with ``password``."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT password FROM users WHERE name = ?", (name,)).fetchone()
        return row is not None and password_matches(password, row[0])

    def require(self, name: str) -> None:
        """:class:`UnknownUser` unless user ``name`` exists."""
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is None:
                raise UnknownUser(name)

    def grant(self, kb: str, kind: GrantKind, principal: str, role: str) -> Grant:
        """Give a user or a group ``role`` on ``kb`` (replacing the role it had there)."""
        grant = Grant(kb, kind, check_name(principal, kind), check_role(role))
        if kind == "user":
            self.require(principal)
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO grants VALUES (?, ?, ?, ?)", (kb, kind, principal, grant.role))
        return grant

    def revoke(self, kb: str, kind: GrantKind, principal: str) -> bool:
        """Take a user's or group's role on ``kb`` away; False if it had none."""
        with self.db.transaction() as conn:
            cursor = conn.execute("DELETE FROM grants WHERE kb = ? AND kind = ? AND principal = ?", (kb, kind, principal))
        return cursor.rowcount > 0

    def grants(self, kb: str | None = None) -> list[Grant]:
        """The grants on ``kb`` (every grant without it)."""
        query = "SELECT kb, kind, principal, role FROM grants" + (" WHERE kb = ?" if kb else "") + " ORDER BY kb, kind, principal"
        with self.db.transaction() as conn:
            return [Grant(*row) for row in conn.execute(query, (kb,) if kb else ())]

    def roles(self, principal: Principal) -> dict[str, Role]:
        """The strongest role ``principal`` has on each knowledge base it may read (its own and its groups' grants)."""
        groups = sorted(principal.groups)
        marks = ",".join("?" * len(groups))
        query = "SELECT kb, role FROM grants WHERE (kind = 'user' AND principal = ?)"
        query += f" OR (kind = 'group' AND principal IN ({marks}))" if groups else ""
        roles: dict[str, Role] = {}
        with self.db.transaction() as conn:
            for kb, role in conn.execute(query, (principal.name, *groups)):
                if roles.get(kb) != "editor":
                    roles[kb] = role
        return roles
