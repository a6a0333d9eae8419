"""Optional LDAP logins: bind as the user with the password given, then read the user's groups.

Configured by the environment (nothing is used while ``RAG_LDAP_URL`` is unset):

- ``RAG_LDAP_URL``: ``ldap://host:389`` or ``ldaps://host:636``;
- ``RAG_LDAP_BASE_DN``: where users and groups are searched, e.g. ``dc=example,dc=org``;
- the user's entry: ``RAG_LDAP_USER_TEMPLATE`` (``uid={user},ou=people,dc=example,dc=org``), or
  ``RAG_LDAP_USER_FILTER`` (``(uid={user})``) searched under the base DN, anonymously or as
  ``RAG_LDAP_BIND_DN`` / ``RAG_LDAP_BIND_PASSWORD``;
- the groups: the values of ``RAG_LDAP_GROUP_ATTRIBUTE`` on the user's entry (default
  ``memberOf``; a DN counts by its first value, ``cn=hr,ou=groups,...`` is ``hr``), and/or the
  ``cn`` of the entries ``RAG_LDAP_GROUP_FILTER`` finds under the base DN
  (``(&(objectClass=groupOfNames)(member={dn}))``; ``{dn}`` and ``{user}`` are filled in).

An LDAP group maps to the grants of the group of the same name (``rag kb grant KB --group hr``).
The user's name and its DN are escaped before they go into a DN or a filter; an empty password is
refused (an LDAP server takes a bind without one as anonymous, which would let anyone in).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from rag.accounts.users import check_name
from rag.errors import InputError, RagError

log = logging.getLogger(__name__)

DEFAULT_GROUP_ATTRIBUTE = "memberOf"
TIMEOUT_S = 10


@dataclass(frozen=True)
class LdapSettings:
    """Where the directory is and how users and groups are found in it (see the module)."""

    url: str
    base_dn: str = ""
    user_template: str = ""
    user_filter: str = ""
    group_attribute: str = DEFAULT_GROUP_ATTRIBUTE
    group_filter: str = ""
    bind_dn: str = ""
    bind_password: str = ""

    @classmethod
    def from_env(cls) -> LdapSettings | None:
        """The settings of ``RAG_LDAP_*``; None while ``RAG_LDAP_URL`` is unset."""
        url = os.environ.get("RAG_LDAP_URL", "").strip()
        if not url:
            return None
        found = cls(
            url=url,
            base_dn=os.environ.get("RAG_LDAP_BASE_DN", "").strip(),
            user_template=os.environ.get("RAG_LDAP_USER_TEMPLATE", "").strip(),
            user_filter=os.environ.get("RAG_LDAP_USER_FILTER", "").strip(),
            group_attribute=os.environ.get("RAG_LDAP_GROUP_ATTRIBUTE", DEFAULT_GROUP_ATTRIBUTE).strip(),
            group_filter=os.environ.get("RAG_LDAP_GROUP_FILTER", "").strip(),
            bind_dn=os.environ.get("RAG_LDAP_BIND_DN", "").strip(),
            bind_password=os.environ.get("RAG_LDAP_BIND_PASSWORD", ""),
        )
        found.check()
        return found

    def check(self) -> None:
        """:class:`RagError` for settings that cannot work (said at start, not at the first login)."""
        if not self.url.startswith(("ldap://", "ldaps://")):
            raise RagError(f"RAG_LDAP_URL must start with ldap:// or ldaps://, not {self.url!r}")
        if bool(self.user_template) == bool(self.user_filter):
            raise RagError("set one of RAG_LDAP_USER_TEMPLATE (uid={user},ou=people,...) or RAG_LDAP_USER_FILTER ((uid={user}))")
        if self.user_template and "{user}" not in self.user_template:
            raise RagError("RAG_LDAP_USER_TEMPLATE must contain {user}")
        if (self.user_filter or self.group_filter) and not self.base_dn:
            raise RagError("RAG_LDAP_BASE_DN is needed to search for users or groups")


class LdapDirectory:
    """Logins checked by binding to the directory as the user."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings

    def authenticate(self, user: str, password: str) -> frozenset[str] | None:
        """The user's groups when binding as ``user`` with ``password`` works; None otherwise (also when
        the directory cannot be reached: logged, and the login fails)."""
        import ldap3
        from ldap3.core.exceptions import LDAPException

        try:
            check_name(user)
        except InputError:
            return None
        if not password:
            return None
        server = ldap3.Server(self.settings.url, connect_timeout=TIMEOUT_S, get_info=ldap3.NONE)
        try:
            dn = self._user_dn(server, user)
            if dn is None:
                return None
            conn = ldap3.Connection(server, user=dn, password=password, read_only=True, receive_timeout=TIMEOUT_S)
            if not conn.bind():
                return None
            try:
                return self._groups(conn, dn, user)
            finally:
                conn.unbind()
        except LDAPException as exc:
            log.warning("LDAP login of %s at %s failed: %s", user, self.settings.url, exc)
            return None

    def _user_dn(self, server: object, user: str) -> str | None:
        """The DN of ``user``: from the template, or the one entry the user filter finds."""
        import ldap3
        from ldap3.utils.conv import escape_filter_chars
        from ldap3.utils.dn import escape_rdn

        if self.settings.user_template:
            return self.settings.user_template.format(user=escape_rdn(user))
        finder = ldap3.Connection(
            server,
            user=self.settings.bind_dn or None,
            password=self.settings.bind_password or None,
            read_only=True,
            receive_timeout=TIMEOUT_S,
        )
        if not finder.bind():
            log.warning("LDAP: cannot bind as %s to look users up", self.settings.bind_dn or "anonymous")
            return None
        try:
            query = self.settings.user_filter.format(user=escape_filter_chars(user))
            finder.search(self.settings.base_dn, query, ldap3.SUBTREE, attributes=[], size_limit=2)
            found = [entry.entry_dn for entry in finder.entries]
        finally:
            finder.unbind()
        return found[0] if len(found) == 1 else None  # none, or ambiguous: no login

    def _groups(self, conn: object, dn: str, user: str) -> frozenset[str]:
        """The names of the user's groups: the group attribute's values and the group filter's ``cn``."""
        import ldap3
        from ldap3.utils.conv import escape_filter_chars

        names: set[str] = set()
        attribute = self.settings.group_attribute
        if attribute:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=[attribute])  # type: ignore[attr-defined]
            for entry in conn.entries:  # type: ignore[attr-defined]
                values = entry.entry_attributes_as_dict.get(attribute, [])
                names.update(group_name(str(value)) for value in values)
        if self.settings.group_filter:
            query = self.settings.group_filter.format(dn=escape_filter_chars(dn), user=escape_filter_chars(user))
            conn.search(self.settings.base_dn, query, ldap3.SUBTREE, attributes=["cn"])  # type: ignore[attr-defined]
            for entry in conn.entries:  # type: ignore[attr-defined]
                names.update(str(value) for value in entry.entry_attributes_as_dict.get("cn", []))
        return frozenset(name for name in names if _is_group_name(name))


def group_name(value: str) -> str:
    """A group attribute's value as a group name: a DN by its first RDN's value, else as it is."""
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.dn import parse_dn

    if "=" not in value:
        return value.strip()
    try:
        return parse_dn(value)[0][1]
    except (LDAPInvalidDnError, IndexError):
        return value.strip()


def _is_group_name(name: str) -> bool:
    try:
        check_name(name, "group")
    except InputError:
        log.info("LDAP group %r skipped: not a name rag-zh groups can have", name)
        return False
    return True


def directory_from_env() -> LdapDirectory | None:
    """The directory of ``RAG_LDAP_*``; None without ``RAG_LDAP_URL``."""
    found = LdapSettings.from_env()
    return LdapDirectory(found) if found else None
