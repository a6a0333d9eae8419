"""Who a request to the API acts as, and the guard for a server without keys.

:class:`Gate` resolves every ``/v1`` and ``/mcp`` request (:func:`is_api_path`) to a
:class:`Principal` in ``request.state.principal``. With no users in the database (single-user mode) that is the local
owner, and :class:`BrowserGuard` keeps other sites' pages out; once users exist, every request
needs ``Authorization: Bearer KEY`` of an unrevoked key (401 otherwise, logged as a login failure),
and acts as the key's user. Keys and roles are read on every request: a revocation holds at once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import socket
import sys

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from rag.access import is_loopback
from rag.accounts.keys import Keys
from rag.accounts.users import LOCAL_OWNER, Principal, Users
from rag.api.schemas import error_response
from rag.components import Components
from rag.files import now_iso

log = logging.getLogger(__name__)

# what Gate guards: every route of the API but /health (its routers live under /v1); in `rag serve`
# everything else is the web page, which has its own login
API_PREFIXES = ("/v1", "/mcp", "/docs", "/openapi.json")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# a Host header or an origin's authority: a name or an IPv4 address, or [IPv6], then an optional port
_AUTHORITY = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::[0-9]{1,5})?$")
LEGACY_KEYS_USER = "api"  # the user the keys of a --keys-file act as, once imported


class Gate:
    """ASGI middleware: the request's principal, from its key (or the local owner in single-user mode)."""

    def __init__(self, app: ASGIApp, components: Components, bound_host: str) -> None:
        self.app = app
        self.guarded = BrowserGuard(app, bound_host)
        db = components.database()
        self.users, self.keys, self.audit = Users(db), Keys(db), components.audit()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self.users.any():
            scope.setdefault("state", {})["principal"] = LOCAL_OWNER
            await self.guarded(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        principal = (
            self.keys.principal(token.strip().decode("latin-1")) if scheme.lower() == b"bearer" and token.strip() else None
        )
        if principal is None:
            self.audit.record("?", "login failure", detail=f"API key on {scope['path']}", outcome="denied", private=False)
            message = "missing or wrong API key: send 'Authorization: Bearer <key>'"
            await error_response(401, message, "invalid_request_error", "invalid_api_key")(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def is_api_path(path: str) -> bool:
    """Whether ``path`` is the API's (under :data:`API_PREFIXES`): :class:`Gate` and the body limit apply."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


def principal_of(request: Request | None) -> Principal:
    """Who ``request`` acts as (set by :class:`Gate`); the local owner without an HTTP request (MCP over stdio)."""
    if request is None:
        return LOCAL_OWNER
    return request.state.principal


def import_keys(components: Components, keys: set[str], source: str) -> None:
    """Keys of a ``--keys-file`` kept as keys of user ``api`` (editor of ``default``, what they could do
    before there were knowledge bases), once: only their hashes, with a message."""
    fingerprint = hashlib.sha256("\n".join(sorted(keys)).encode("utf-8")).hexdigest()
    db = components.database()
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM imports WHERE path = ? AND sha256 = ?", (source, fingerprint)).fetchone():
            return
    users, stored = Users(db), Keys(db)
    if users.principal(LEGACY_KEYS_USER) is None:
        users.add(LEGACY_KEYS_USER)
    users.grant("default", "user", LEGACY_KEYS_USER, "editor")
    known = {key.label for key in stored.all()}
    for key in sorted(keys):
        label = f"imported-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        if label not in known:
            stored.add(LEGACY_KEYS_USER, label, key)
    with db.transaction() as conn:
        conn.execute("INSERT INTO imports VALUES (?, ?, ?, ?)", (source, fingerprint, "api keys", now_iso()))
    print(
        f"rag: imported {len(keys)} API key(s) from {source} into {db.path} as keys of user '{LEGACY_KEYS_USER}' "
        "(editor of KB default); manage them with `rag keys list` / `rag keys revoke`, and the file may go",
        file=sys.stderr,
    )


class BrowserGuard:
    """ASGI middleware for a server without API keys: no DNS rebinding, no cross-site writes.

    Without keys, any web page a user opens could use the API through the user's browser, so:

    * ``Host`` must name this machine, or a DNS-rebinding page could read documents and search
      results under its own name: loopback (``localhost``, ``127.0.0.0/8``, ``[::1]``, any port).
      Served beyond loopback on purpose (``RAG_ALLOW_OPEN=1``), the names it is reached by are not
      known, so any IP address, the host it listens on and this machine's name pass too: a
      rebinding page can only send a DNS name it controls (to serve under another name, listen
      on that name, or give keys).
    * ``POST``/``PUT``/``PATCH``/``DELETE`` with an ``Origin`` whose host is neither loopback nor
      the request's own host (``null`` included) is refused: a form or a simple ``fetch`` from any
      site reaches the API without a CORS preflight (an upload would poison the knowledge base).

    Both are 403 in OpenAI's error JSON, not 421: the request is refused, not sent to the wrong
    server, and a client should not retry it elsewhere. With keys this middleware is not used: a
    page cannot send the bearer key cross-site without a preflight, which the API never allows, and
    a server exposed with keys must answer under whatever name it is reached by.
    """

    def __init__(self, app: ASGIApp, bound_host: str) -> None:
        self.app = app
        self.loopback_only = is_loopback(bound_host)
        names = (bound_host.strip("[]").lower(), socket.gethostname().lower())
        self.names = frozenset(name for name in names if not _is_ip(name))  # addresses pass anyway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.problem(scope)
        if problem:
            await error_response(403, problem[1], "invalid_request_error", problem[0])(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def problem(self, scope: Scope) -> tuple[str, str] | None:
        """(code, message) when the request must be refused, else None."""
        hosts = _header_values(scope, b"host")
        host = authority_host(hosts[0]) if len(hosts) == 1 else None
        if host is None or not self.host_allowed(host):
            where = (
                "127.0.0.1, localhost or [::1]" if self.loopback_only else "its IP addresses or " + ", ".join(sorted(self.names))
            )
            return "host_not_allowed", (
                f"this API answers only requests addressed to {where} (a web page may be trying DNS rebinding); "
                "give --keys-file to serve it under other names"
            )
        origins = _header_values(scope, b"origin")
        if scope["method"] in STATE_CHANGING and not all(origin_allowed(origin, host) for origin in origins):
            return "cross_site_request", (
                "a request from another site's page (Origin header) is refused: without API keys only pages "
                "of this machine may send it"
            )
        return None

    def host_allowed(self, host: str) -> bool:
        """Loopback; or, when served beyond loopback on purpose, an IP address or one of :attr:`names`."""
        if is_loopback(host):
            return True
        return not self.loopback_only and (host in self.names or _is_ip(host))


def origin_allowed(origin: str, host: str) -> bool:
    """Whether a page of ``origin`` may change things on the server reached as ``host``: loopback, or the same host."""
    found = origin_host(origin)
    return found is not None and (is_loopback(found) or found == host)


def authority_host(value: str) -> str | None:
    """The host of a ``Host`` header or an origin's ``host[:port]`` (brackets dropped, lower case); None if malformed."""
    match = _AUTHORITY.match(value.strip())
    return (match["ipv6"] or match["name"]).lower() if match else None


def origin_host(origin: str) -> str | None:
    """The host of an ``Origin`` header; None for ``null`` or anything but ``http(s)://host[:port]``."""
    scheme, separator, authority = origin.strip().partition("://")
    return authority_host(authority) if separator and scheme.lower() in ("http", "https") else None


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers") or [] if key == name]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
