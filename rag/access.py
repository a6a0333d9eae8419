"""Who may reach a server: loopback detection, logins and API keys read from files."""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

from rag.errors import RagError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def open_allowed() -> bool:
    """``RAG_ALLOW_OPEN=1``: serving beyond this machine without a login or keys is on purpose."""
    return os.environ.get("RAG_ALLOW_OPEN", "").strip() == "1"


def check_exposure(
    host: str,
    has_login: bool,
    allow_open: bool,
    protection: str = "a login",
    remedy: str = "Give --auth-file FILE (lines of user:password) or set RAG_AUTH=user:password",
) -> None:
    """Refuse to listen beyond this machine without ``protection``, unless told to on purpose."""
    if is_loopback(host) or has_login or allow_open:
        return
    raise RagError(
        f"refusing to serve on {host} without {protection}: anyone on the network could read the articles "
        f"and change the knowledge base. {remedy}; to serve without {protection} on purpose, set RAG_ALLOW_OPEN=1."
    )


def read_secret_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-blank, non-``#`` lines of ``path`` with their line numbers; an unreadable or empty file is an error.

    A file other users may read or change is read all the same, with a warning (see :func:`warn_if_shared`)."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        warn_if_shared(path, what)
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read the {what} file {path}: {exc}") from exc
    entries = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise RagError(f"the {what} file {path} has no entries")
    return entries


def warn_if_shared(path: Path, what: str) -> None:
    """Log a warning when group or others may read or write ``path`` (with no logging set up, as
    in ``rag serve`` and ``rag api``, Python prints it on stderr)."""
    mode = path.stat().st_mode
    if mode & 0o077:
        log.warning(
            "the %s file %s can be read or changed by other users (mode %s); run `chmod 600 %s`",
            what,
            path,
            format(mode & 0o777, "04o"),
            path,
        )


def read_api_keys(path: Path) -> set[str]:
    """API keys, one per line (at least 16 characters each)."""
    keys = set()
    for number, key in read_secret_lines(path, "API keys"):
        if len(key) < 16 or any(ch.isspace() for ch in key):
            raise RagError(f"{path}, line {number}: an API key needs at least 16 characters and no spaces")
        keys.add(key)
    return keys
