"""What administrators do to users, grants and API keys: the one copy the CLI (as ``local``) and the
web page's 管理 tab (as the logged-in administrator) both call.

Every call checks that its actor is an administrator (:class:`Forbidden` otherwise), and every
change is an audit row in the actor's name (the detail names who got what, never a secret)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rag.accounts.audit import AuditLog, audit_for
from rag.accounts.db import Database
from rag.accounts.kbs import KbRegistry, registry_for
from rag.accounts.keys import ApiKey, Keys
from rag.accounts.permissions import Permissions
from rag.accounts.users import Grant, GrantKind, Principal, Role, User, Users
from rag.config import Settings


@dataclass(frozen=True)
class UserListing:
    """A user as administrators see it: the user and its own grants (KB -> role)."""

    user: User
    grants: dict[str, Role] = field(default_factory=dict)


class Administration:
    """Users, grants and keys changed by an administrator, each change audited."""

    def __init__(self, db: Database, registry: KbRegistry, audit: AuditLog) -> None:
        self.users = Users(db)
        self.keys = Keys(db)
        self.registry = registry
        self.audit = audit

    def list_users(self, actor: Principal) -> list[UserListing]:
        """Every user, by name, with its groups, admin flag and own grants."""
        Permissions.require_admin(actor)
        grants = self.users.grants()
        return [
            UserListing(user, {g.kb: g.role for g in grants if (g.kind, g.principal) == ("user", user.name)})
            for user in self.users.all()
        ]

    def list_grants(self, actor: Principal) -> list[Grant]:
        """Every grant, by KB, kind and name."""
        Permissions.require_admin(actor)
        return self.users.grants()

    def list_keys(self, actor: Principal) -> list[ApiKey]:
        """Every API key (never the key itself), revoked ones too."""
        Permissions.require_admin(actor)
        return self.keys.all()

    def add_user(
        self, actor: Principal, name: str, groups: Iterable[str] = (), admin: bool = False, password: str | None = None
    ) -> User:
        """A new user (without a password: API keys only)."""
        Permissions.require_admin(actor)
        user = self.users.add(name, groups, admin, password)
        detail = f"{user.name} ({', '.join(user.groups) or 'no group'}{', admin' if user.admin else ''})"
        self.record(actor, "user add", (), detail)
        return user

    def grant(self, actor: Principal, kb: str, kind: GrantKind, name: str, role: str) -> Grant:
        """Give a user or a group ``role`` on KB ``kb`` (:class:`KbNotFound` when there is none)."""
        Permissions.require_admin(actor)
        self.registry.get(kb)
        grant = self.users.grant(kb, kind, name, role)
        self.record(actor, "grant", [kb], f"{kind} {name} {grant.role}")
        return grant

    def revoke(self, actor: Principal, kb: str, kind: GrantKind, name: str) -> bool:
        """Take a user's or group's role on ``kb`` away; False (audited as ``none``) if it had none."""
        Permissions.require_admin(actor)
        self.registry.get(kb)
        revoked = self.users.revoke(kb, kind, name)
        self.record(actor, "revoke", [kb], f"{kind} {name}", "ok" if revoked else "none")
        return revoked

    def create_key(self, actor: Principal, user: str, label: str | None = None) -> tuple[ApiKey, str]:
        """A new API key of ``user``: (its record, the key, to show once)."""
        Permissions.require_admin(actor)
        key, secret = self.keys.create(user, label)
        self.record(actor, "key create", (), f"{key.id} {key.label} of {key.user}")
        return key, secret

    def revoke_key(self, actor: Principal, key_id: int) -> ApiKey:
        """Stop API key ``key_id`` working."""
        Permissions.require_admin(actor)
        key = self.keys.revoke(key_id)
        self.record(actor, "key revoke", (), f"{key.id} {key.label} of {key.user}")
        return key

    def record(self, actor: Principal, action: str, kbs: Iterable[str], detail: str, outcome: str = "ok") -> None:
        """The audit row of an administrator's change (its detail is kept: it names no question)."""
        self.audit.record(actor.actor, action, list(kbs), detail, outcome, private=False)


def administration_for(settings: Settings, db: Database | None = None) -> Administration:
    """The administration of ``db`` (default: ``settings``' database)."""
    db = db or Database(settings.db_file)
    return Administration(db, registry_for(settings, db), audit_for(settings, db))
