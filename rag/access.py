"""Who may reach a server: loopback detection, logins and API keys read from files."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from rag.errors import RagError


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def read_secret_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-blank, non-``#`` lines of ``path`` with their line numbers; an unreadable or empty file is an error."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RagError(f"cannot read the {what} file {path}: {exc}") from exc
    entries = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise RagError(f"the {what} file {path} has no entries")
    return entries


def read_api_keys(path: Path) -> set[str]:
    """API keys, one per line (at least 16 characters each)."""
    keys = set()
    for number, key in read_secret_lines(path, "API keys"):
        if len(key) < 16 or any(ch.isspace() for ch in key):
            raise RagError(f"{path}, line {number}: an API key needs at least 16 characters and no spaces")
        keys.add(key)
    return keys
