"""Who a request of the web page acts as: logins checked against the users in ``RAG_DB``.

With no users (single-user mode) every request is the local owner, as before there were
knowledge bases; the page then needs no login (and only loopback, unless ``RAG_ALLOW_OPEN=1``).
Once users exist, Gradio's login form asks for a name and password, checked here against the
scrypt hash in ``users``, or, with ``RAG_LDAP_URL`` set, by binding to the directory as the user
(:mod:`rag.accounts.ldap`; its groups join the user's groups of ``RAG_DB``, an LDAP user needs no
row in ``users``, and ``rag users add NAME --admin`` without a password makes one an administrator).
The session's user name is turned into a principal on every request, so a revoked grant holds at
the next click. A failed login is an audit row. The logins of an old
``--auth-file`` / ``RAG_AUTH`` are imported once as users of group ``staff`` (editor of ``default``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from typing import Any

from rag.accounts.kbs import DEFAULT_KB
from rag.accounts.ldap import LdapDirectory, directory_from_env
from rag.accounts.users import LOCAL_OWNER, Principal, Users, check_name, hash_password
from rag.components import Components
from rag.errors import InputError
from rag.files import now_iso

log = logging.getLogger(__name__)

LEGACY_LOGINS_GROUP = "staff"  # the group the logins of an old auth file join, editor of default
NOBODY = Principal("?")  # a session without a known user: may read nothing


class WebLogins:
    """Logins of the page and the principal of each of its requests."""

    def __init__(self, components: Components, directory: LdapDirectory | None = None) -> None:
        db = components.database()
        self.users = Users(db)
        self.audit = components.audit()
        self.directory = directory or directory_from_env()
        self._ldap_groups: dict[str, frozenset[str]] = {}  # read at each LDAP login, for that user's requests

    def required(self) -> bool:
        """Whether the page asks for a login (there are users, or an LDAP directory)."""
        return self.directory is not None or self.users.any()

    def check(self, username: str, password: str) -> bool:
        """Gradio's login check: the user's scrypt hash; a failure is audited (the name only if it is a user's)."""
        name = (username or "").strip()
        if name and self.users.check_password(name, password or ""):
            self._ldap_groups.pop(name, None)
            return True
        if name and self.directory is not None:
            groups = self.directory.authenticate(name, password or "")
            if groups is not None:
                self._ldap_groups[name] = groups
                return True
        known = bool(name) and self.users.principal(name) is not None
        detail = f"web login as {name}" if known else "web login (unknown user)"
        self.audit.record(name if known else "?", "login failure", detail=detail, outcome="denied", private=False)
        return False

    def principal(self, request: Any) -> Principal:
        """Who ``request`` (a ``gr.Request``, or None in tests) acts as: the local owner without users,
        else its logged-in user (looked up now: groups and admin as they are at this moment)."""
        if not self.required():
            return LOCAL_OWNER
        name = getattr(request, "username", None) if request is not None else None
        if not name:
            return NOBODY
        ldap_groups = self._ldap_groups.get(name)
        found = self.users.principal(name, extra_groups=ldap_groups or ())
        if found is None and ldap_groups is not None:
            return Principal(name, groups=ldap_groups)  # in the directory only
        return found or NOBODY


def import_logins(components: Components, logins: list[tuple[str, str]], source: str) -> None:
    """The logins of an old auth file (or ``RAG_AUTH``) kept as users of group ``staff``, editor of
    ``default`` (what they could do before there were knowledge bases), once, with a message.

    Passwords are stored as scrypt hashes; a user that exists already keeps its password."""
    fingerprint = hashlib.sha256("\n".join(f"{user}:{password}" for user, password in sorted(logins)).encode()).hexdigest()
    db = components.database()
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM imports WHERE path = ? AND sha256 = ?", (source, fingerprint)).fetchone():
            return
    users = Users(db)
    added, kept = [], []
    for user, password in logins:
        try:
            check_name(user)
        except InputError as exc:
            log.warning("%s: login %r not imported: %s", source, user, exc)
            continue
        if users.principal(user) is not None:
            kept.append(user)
            continue
        # the old file had no length rule, so its passwords go in as they are (hashed)
        stamp = now_iso()
        with db.transaction() as conn:
            conn.execute("INSERT INTO users VALUES (?, ?, 0, ?)", (user, hash_password(password), stamp))
            conn.execute("INSERT INTO memberships VALUES (?, ?)", (user, LEGACY_LOGINS_GROUP))
        added.append(user)
    users.grant(DEFAULT_KB, "group", LEGACY_LOGINS_GROUP, "editor")
    with db.transaction() as conn:
        conn.execute("INSERT INTO imports VALUES (?, ?, ?, ?)", (source, fingerprint, "web logins", now_iso()))
    note = f"; {', '.join(kept)} existed already and kept their passwords" if kept else ""
    print(
        f"rag: imported {len(added)} login(s) from {source} into {db.path} as users of group '{LEGACY_LOGINS_GROUP}' "
        f"(editor of KB default){note}; manage them with `rag users list` / `rag kb grant`, and the file may go",
        file=sys.stderr,
    )
