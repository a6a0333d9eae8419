"""Which knowledge bases a principal may read or change: the one place requests are scoped.

A knowledge base the caller may not read is answered exactly like one that does not exist
(:class:`KbNotFound`, 404); one it may read but not change is :class:`Forbidden` (403)."""

from __future__ import annotations

from collections.abc import Sequence

from rag.accounts.db import Database
from rag.accounts.kbs import Kb, KbNotFound, KbRegistry
from rag.accounts.users import Principal, Role, Users
from rag.errors import RagError


class Forbidden(RagError):
    """The caller may see this knowledge base but not do this there (an editor's or an administrator's action)."""


class Permissions:
    """Roles of principals on the knowledge bases, read from the database on every call (a revoked
    grant holds from the next request on)."""

    def __init__(self, db: Database, registry: KbRegistry) -> None:
        self.users = Users(db)
        self.registry = registry

    def role(self, principal: Principal, kb: str) -> Role | None:
        """``editor`` (administrators everywhere), ``reader``, or None: may not read it."""
        return "editor" if principal.admin else self.users.roles(principal).get(kb)

    def readable(self, principal: Principal) -> list[Kb]:
        """The knowledge bases ``principal`` may read, ``default`` first."""
        kbs = self.registry.list()
        if principal.admin:
            return kbs
        roles = self.users.roles(principal)
        return [kb for kb in kbs if kb.name in roles]

    def resolve(self, principal: Principal, names: Sequence[str] | None = None) -> list[Kb]:
        """The knowledge bases named (every readable one when none is named); :class:`KbNotFound`
        for a name that does not exist or that ``principal`` may not read."""
        readable = {kb.name: kb for kb in self.readable(principal)}
        if not names:
            return list(readable.values())
        for name in names:
            if name not in readable:
                raise KbNotFound(name)
        return [readable[name] for name in dict.fromkeys(names)]

    def editable(self, principal: Principal, name: str) -> Kb:
        """Knowledge base ``name`` if ``principal`` may change it (upload, delete, sync)."""
        kb = self.resolve(principal, [name])[0]
        if self.role(principal, name) != "editor":
            raise Forbidden(f"{principal.name} may read knowledge base {name!r} but not change it (an editor's role)")
        return kb

    @staticmethod
    def require_admin(principal: Principal) -> None:
        """:class:`Forbidden` unless ``principal`` is an administrator."""
        if not principal.admin:
            raise Forbidden(f"{principal.name} is not an administrator")
